from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from analysis.models import (
    Analysis,
    Case,
    MediaAsset,
    Membership,
    PromptTemplate,
    RetentionPolicy,
)
from analysis.models.retention import SCOPE_LABELS, SCOPES


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
        self.case = case
        # Built here, not at import, so the limit follows settings (and test overrides).
        self.fields["question"] = forms.CharField(
            strip=True,
            required=False,  # a template may ask it
            max_length=settings.QUESTION_MAX_CHARS,
            widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask about this case…"}),
        )
        templates = PromptTemplate.for_case(case) if case else PromptTemplate.objects.none()
        self.fields["template"] = forms.ModelChoiceField(
            queryset=templates, required=False, empty_label="Free question", label="Template"
        )
        # A follow-up names the turn it continues (same case only).
        previous = case.analyses.all() if case else Analysis.objects.none()
        self.fields["follows"] = forms.ModelChoiceField(
            queryset=previous, required=False, widget=forms.HiddenInput
        )
        # The items the question is about: only this case's, only those ready for the model.
        ready = MediaAsset.objects.none()
        if case is not None:
            ready = case.media.filter(status=MediaAsset.Status.READY).order_by("created_at")
        self.fields["media"] = forms.ModelMultipleChoiceField(
            queryset=ready, required=False, widget=forms.CheckboxSelectMultiple, label="About"
        )
        self.fields["media"].label_from_instance = lambda a: f"{a.filename} ({a.kind})"

    def clean(self) -> dict:
        data = super().clean()
        template, media = data.get("template"), list(data.get("media") or [])
        if template is not None:
            kinds = {asset.kind for asset in media}
            if template.media_kinds and not kinds <= set(template.media_kinds):
                self.add_error(
                    "template",
                    f"“{template.name}” applies to {', '.join(template.media_kinds)} only.",
                )
            if not data.get("question"):
                data["question"] = template.fill(self.case, media[0] if media else None)
        if not data.get("question"):
            self.add_error("question", "Type a question or pick a template.")
        return data

    def thread_media(self) -> list:
        """A follow-up is about what its thread is about: the first turn's items."""
        follows = self.cleaned_data.get("follows")
        if follows is not None:
            return list(follows.thread_root().media.all())
        return list(self.cleaned_data["media"])


class BatchForm(forms.Form):
    """One template over many items: each item becomes its own job."""

    template = forms.ModelChoiceField(queryset=PromptTemplate.objects.none())

    def __init__(self, *args, case: Case, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["template"].queryset = PromptTemplate.for_case(case)
        self.fields["items"] = forms.ModelMultipleChoiceField(
            queryset=case.media.filter(status=MediaAsset.Status.READY).order_by("created_at"),
            widget=forms.CheckboxSelectMultiple,
            label="Items",
        )
        self.fields["items"].label_from_instance = lambda a: f"{a.filename} ({a.kind})"

    def clean(self) -> dict:
        data = super().clean()
        template, media = data.get("template"), data.get("items") or []
        if template is not None and media:
            wrong = [a.filename for a in media if not template.applies_to(a.kind)]
            if wrong:
                self.add_error(
                    "items", f"“{template.name}” does not apply to: {', '.join(wrong[:5])}."
                )
            if len(media) > settings.BATCH_MAX_ITEMS:
                self.add_error("items", f"At most {settings.BATCH_MAX_ITEMS} items a batch.")
        return data


class TemplateForm(forms.ModelForm):
    """A prompt template; the JSON fields are typed as JSON text and checked here."""

    media_kinds = forms.MultipleChoiceField(
        choices=[(k, k) for k in ("image", "audio", "video", "document")],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any item, and questions without media.",
    )

    class Meta:
        model = PromptTemplate
        fields = ["name", "text", "media_kinds", "sampler", "response_schema"]
        widgets = {"text": forms.Textarea(attrs={"rows": 4})}
        help_texts = {
            "text": "Placeholders: {item}, {kind}, {case}, {reference}.",
            "sampler": 'Overrides, e.g. {"temperature": 0, "max_tokens": 400}.',
            "response_schema": "Optional JSON schema: the answer is then JSON, shown as a table.",
        }

    def __init__(self, *args, case: Case | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.case = case
        self.fields["sampler"].required = False
        self.fields["response_schema"].required = False
        if not self.instance.pk:
            self.fields["sampler"].initial = {"temperature": 0.0}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = PromptTemplate.objects.filter(case=self.case, name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"A template named “{name}” exists already.")
        return name

    def clean_text(self) -> str:
        from analysis.models.templates import unknown_placeholders

        text = self.cleaned_data["text"]
        if unknown := unknown_placeholders(text):
            raise forms.ValidationError(f"Unknown placeholders: {', '.join(unknown)}.")
        return text

    def clean_sampler(self) -> dict:
        from analysis.inference.types import Sampler

        value = self.cleaned_data.get("sampler") or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Sampler settings are a JSON object.")
        known = set(Sampler().as_dict())
        if unknown := sorted(set(value) - known):
            raise forms.ValidationError(f"Unknown sampler settings: {', '.join(unknown)}.")
        try:
            Sampler.from_dict(value)
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(f"Bad sampler value: {exc}") from exc
        return value

    def clean_response_schema(self) -> dict | None:
        from analysis.inference import structured
        from analysis.inference.types import EngineError

        schema = self.cleaned_data.get("response_schema")
        if schema in (None, "", {}):
            return None
        if not isinstance(schema, dict):
            raise forms.ValidationError("The schema is a JSON object.")
        try:
            # Refused here, not when a job runs (the grammar itself is built by the worker:
            # the web process never imports llama.cpp).
            structured.check_schema(schema)
        except EngineError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return schema


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


class RetentionPolicyForm(forms.ModelForm):
    """A policy: for each part, days (empty: keep forever) and from when they count."""

    class Meta:
        model = RetentionPolicy
        fields = [
            *(f"{scope}_{part}" for scope in SCOPES for part in ("days", "after")),
            "keep_title",
            "allow_case_overrides",
        ]

    def __init__(self, *args, is_global: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not is_global:
            del self.fields["allow_case_overrides"]
        for scope, anchors in SCOPES.items():
            self.fields[f"{scope}_after"].choices = [(a.value, a.label) for a in anchors]
            self.fields[f"{scope}_days"].label = f"Delete {SCOPE_LABELS[scope]} after (days)"
            self.fields[f"{scope}_days"].help_text = "Empty: keep forever."
        self.fields["keep_title"].label = "A fully purged case keeps its title"


class HoldForm(forms.Form):
    reason = forms.CharField(max_length=2000, strip=True, widget=forms.Textarea(attrs={"rows": 2}))
    matter = forms.CharField(max_length=100, strip=True, required=False, label="Matter reference")


class LiftHoldForm(forms.Form):
    reason = forms.CharField(max_length=2000, strip=True, label="Why the hold is lifted")


class DeletionRequestForm(forms.Form):
    reason = forms.CharField(max_length=2000, strip=True, widget=forms.Textarea(attrs={"rows": 2}))
    asset = forms.ModelChoiceField(
        queryset=MediaAsset.objects.none(), required=False, empty_label="The whole case"
    )

    def __init__(self, *args, case: Case, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kept = MediaAsset.objects.filter(case=case).exclude(status__in=MediaAsset.GONE)
        self.fields["asset"].queryset = kept
        self.fields["asset"].label = "What to delete"
