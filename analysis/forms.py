from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from analysis.models import Case, MediaAsset, Membership


class CaseForm(forms.ModelForm):
    class Meta:
        model = Case
        fields = ["title", "reference", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean_reference(self) -> str | None:
        # Blank means "no reference"; store NULL so the unique constraint ignores it.
        return (self.cleaned_data.get("reference") or "").strip() or None


class AskForm(forms.Form):
    question = forms.CharField(strip=True)

    def __init__(self, *args, case: Case | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Built here, not at import, so the limit follows settings (and test overrides).
        self.fields["question"] = forms.CharField(
            strip=True,
            max_length=settings.QUESTION_MAX_CHARS,
            widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask about this case…"}),
        )
        # The items the question is about: only this case's, only those ready for the model.
        ready = MediaAsset.objects.none()
        if case is not None:
            ready = case.media.filter(status=MediaAsset.Status.READY).order_by("created_at")
        self.fields["media"] = forms.ModelMultipleChoiceField(
            queryset=ready, required=False, widget=forms.CheckboxSelectMultiple, label="About"
        )
        self.fields["media"].label_from_instance = lambda a: f"{a.filename} ({a.kind})"


class MemberAddForm(forms.Form):
    user = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.REVIEWER)

    def __init__(self, *args, case: Case, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.case = case

    def clean_user(self):
        User = get_user_model()
        value = self.cleaned_data["user"].strip()
        user = (
            User.objects.filter(is_active=True)
            .filter(Q(username__iexact=value) | Q(email__iexact=value))
            .first()
        )
        if user is None:
            raise forms.ValidationError(f"No active user “{value}”.")
        if Membership.objects.filter(case=self.case, user=user).exists():
            raise forms.ValidationError(f"{user.get_username()} is already a member.")
        return user


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class BreakGlassForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=10,
        max_length=2000,
        help_text="Why you need to see this case's media and answers. This is recorded.",
    )


class ModelRegisterForm(forms.Form):
    """A model is named by its path on the server: model files are never uploaded."""

    name = forms.CharField(max_length=100)
    gguf_path = forms.CharField(max_length=500, label="GGUF path (absolute, on the server)")
    mmproj_path = forms.CharField(
        max_length=500, required=False, label="mmproj path (projector for images/audio)"
    )
    n_ctx = forms.IntegerField(min_value=256, initial=8192, label="Context (tokens)")
    n_gpu_layers = forms.IntegerField(min_value=-1, initial=0, label="GPU layers (-1: all)")
    n_threads = forms.IntegerField(min_value=0, initial=0, label="CPU threads (0: automatic)")
    default = forms.BooleanField(required=False, label="Make it the default model")


class ModelSettingsForm(forms.Form):
    n_ctx = forms.IntegerField(min_value=256, label="Context (tokens)")
    n_gpu_layers = forms.IntegerField(min_value=-1, label="GPU layers (-1: all)")
    n_threads = forms.IntegerField(min_value=0, label="CPU threads (0: automatic)")
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, help_text="0: greedy")
    top_k = forms.IntegerField(min_value=0)
    top_p = forms.FloatField(min_value=0.0, max_value=1.0)
    min_p = forms.FloatField(min_value=0.0, max_value=1.0)
    repeat_penalty = forms.FloatField(min_value=0.0, max_value=2.0)
    seed = forms.IntegerField(min_value=0)
    max_tokens = forms.IntegerField(min_value=1, label="Answer length (tokens)")

    SAMPLER = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens")

    @classmethod
    def initial_for(cls, model) -> dict:
        fields = {"n_ctx": model.n_ctx, "n_gpu_layers": model.n_gpu_layers}
        return fields | {"n_threads": model.n_threads} | dict(model.sampler)

    def changes(self) -> dict:
        data = self.cleaned_data
        sampler = {key: data[key] for key in self.SAMPLER}
        return {key: data[key] for key in ("n_ctx", "n_gpu_layers", "n_threads")} | {
            "sampler": sampler
        }
