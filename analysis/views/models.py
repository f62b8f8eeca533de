"""Staff pages for the model registry: list, register by server path, edit settings, default.

Superusers only (GGUF files are code-adjacent); everyone else gets 404, as for any
page they may not know exists. Every change is an audit event (registry.py records them).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from analysis.forms import ModelRegisterForm, ModelSettingsForm
from analysis.inference import registry
from analysis.inference.types import EngineError
from analysis.models import LanguageModel


def _require_admin(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_active and user.is_superuser):
        raise Http404("No such page.")


@login_required
@require_safe
def model_list(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    models = LanguageModel.objects.all()
    return render(request, "analysis/models/list.html", {"models": models})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def model_register(request: HttpRequest) -> HttpResponse:
    _require_admin(request)
    form = ModelRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = registry.register(
                name=data["name"], gguf=data["gguf_path"], mmproj=data["mmproj_path"],
                default=data["default"], n_ctx=data["n_ctx"], n_gpu_layers=data["n_gpu_layers"],
                n_threads=data["n_threads"], actor=request.user, request=request,
            )  # fmt: skip
        except EngineError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Model {model.name} registered: {model.gguf_sha256}.")
            return redirect("model-list")
    return render(request, "analysis/models/register.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def model_edit(request: HttpRequest, model_id: int) -> HttpResponse:
    _require_admin(request)
    model = get_object_or_404(LanguageModel, pk=model_id)
    form = ModelSettingsForm(request.POST or None, initial=ModelSettingsForm.initial_for(model))
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            changes = registry.update(model, actor=request.user, request=request, **form.changes())
        messages.success(request, "Saved." if changes else "Nothing changed.")
        return redirect("model-list")
    return render(request, "analysis/models/edit.html", {"model": model, "form": form})


@login_required
@require_POST
def model_set_default(request: HttpRequest, model_id: int) -> HttpResponse:
    _require_admin(request)
    model = get_object_or_404(LanguageModel, pk=model_id)
    registry.set_default(model, actor=request.user, request=request)
    messages.success(request, f"{model.name} answers new questions from now on.")
    return redirect("model-list")
