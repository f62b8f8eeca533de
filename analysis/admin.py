"""Django admin: user accounts, with every change recorded on the audit trail."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from analysis.users import end_sessions_and_sockets, record_user_change, role_of

User = get_user_model()


class AuditedUserAdmin(UserAdmin):
    def save_model(self, request, obj, form, change) -> None:
        # Groups are saved after save_model (save_related), so the role is compared there.
        self._before = role_of(User.objects.get(pk=obj.pk)) if change else None
        self._was_active = User.objects.get(pk=obj.pk).is_active if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            record_user_change(
                form.instance, before=self._before, was_active=self._was_active, request=request
            )
            if self._was_active and not form.instance.is_active:
                end_sessions_and_sockets(form.instance)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Accounts are deactivated, never deleted: the audit trail and answers point at them.
        return False


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
