from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from analysis.models import Case, Membership


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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Built here, not at import, so the limit follows settings (and test overrides).
        self.fields["question"] = forms.CharField(
            strip=True,
            max_length=settings.QUESTION_MAX_CHARS,
            widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Ask about this case…"}),
        )


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
