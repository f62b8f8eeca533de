"""Registered language models (GGUF + mmproj, by path and SHA-256)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def default_sampler() -> dict:
    # Greedy by default: the same question on the same media gives the same answer.
    return {
        "temperature": 0.0,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "repeat_penalty": 1.0,
        "seed": 0,
        "max_tokens": 512,
    }


class LanguageModel(models.Model):
    """A GGUF (+ optional mmproj) an administrator approved, by path and SHA-256.

    GGUF files are code-adjacent (parser CVEs, chat-template injection): they are never
    uploaded, and a file whose hash no longer matches refuses to load
    (analysis/inference/registry.py). Capabilities are read from the mmproj at registration.
    """

    name = models.CharField(max_length=100, unique=True)
    gguf_path = models.CharField(max_length=500)
    gguf_sha256 = models.CharField(max_length=64)
    mmproj_path = models.CharField(max_length=500, blank=True)
    mmproj_sha256 = models.CharField(max_length=64, blank=True)
    n_ctx = models.PositiveIntegerField(default=8192)
    n_gpu_layers = models.IntegerField(default=0)  # -1: all layers on the GPU
    n_threads = models.PositiveSmallIntegerField(default=0)  # 0: llama.cpp picks
    sampler = models.JSONField(default=default_sampler)
    has_vision = models.BooleanField(default=False)
    has_audio = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # At most one default; registry.set_default keeps it at exactly one.
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def capabilities(self) -> list[str]:
        return ["text"] + ["image"] * self.has_vision + ["audio"] * self.has_audio

    @classmethod
    def default(cls) -> LanguageModel | None:
        return cls.objects.filter(is_default=True).first()
