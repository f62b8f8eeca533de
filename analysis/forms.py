from __future__ import annotations

from django import forms
from django.conf import settings

from analysis.models import Case


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
