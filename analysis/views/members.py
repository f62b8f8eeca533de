from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from analysis import access, audit, streaming
from analysis.forms import MemberAddForm, MemberRoleForm
from analysis.models import AuditEvent, Membership


@login_required
@require_safe
def member_list(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id)
    can_manage = found.can(access.Action.MANAGE)
    members = found.case.memberships.select_related("user").order_by("role", "user__username")
    context = {
        "case": found.case,
        "access": found,
        "members": members,
        "can_manage": can_manage,
        "add_form": MemberAddForm(case=found.case) if can_manage else None,
        "roles": Membership.Role.choices,
    }
    return render(request, "analysis/cases/members.html", context)


@login_required
@require_POST
def member_add(request: HttpRequest, case_id) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.MANAGE)
    form = MemberAddForm(request.POST, case=found.case)
    if form.is_valid():
        user, role = form.cleaned_data["user"], form.cleaned_data["role"]
        with transaction.atomic():
            member = Membership.objects.create(case=found.case, user=user, role=role)
            audit.record(
                AuditEvent.Action.MEMBER_ADDED,
                case=found.case,
                target=member,
                request=request,
                details={"user": user.get_username(), "role": role},
            )
        messages.success(request, f"{form.cleaned_data['user'].get_username()} added.")
    else:
        for error in form.errors.values():
            messages.error(request, " ".join(error))
    return redirect("member-list", case_id=found.case.id)


@login_required
@require_POST
def member_role(request: HttpRequest, case_id, membership_id: int) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.MANAGE)
    form = MemberRoleForm(request.POST)
    with transaction.atomic():
        member = get_object_or_404(
            Membership.objects.select_for_update(), pk=membership_id, case=found.case
        )
        if not form.is_valid():
            messages.error(request, "Unknown role.")
        elif form.cleaned_data["role"] != Membership.Role.OWNER and member.is_last_owner():
            messages.error(request, "A case always keeps at least one owner.")
        else:
            before, member.role = member.role, form.cleaned_data["role"]
            member.save(update_fields=["role"])
            audit.record(
                AuditEvent.Action.MEMBER_ROLE_CHANGED,
                case=found.case,
                target=member,
                request=request,
                details={"user": member.user.get_username(), "from": before, "to": member.role},
            )
            messages.success(request, f"{member.user.get_username()} is now {member.role}.")
    return redirect("member-list", case_id=found.case.id)


@login_required
@require_POST
def member_remove(request: HttpRequest, case_id, membership_id: int) -> HttpResponse:
    found = access.get_case_or_404(request.user, case_id, access.Action.MANAGE)
    with transaction.atomic():
        member = get_object_or_404(
            Membership.objects.select_for_update(), pk=membership_id, case=found.case
        )
        if member.is_last_owner():
            messages.error(request, "A case always keeps at least one owner.")
            return redirect("member-list", case_id=found.case.id)
        member.delete()
        audit.record(
            AuditEvent.Action.MEMBER_REMOVED,
            case=found.case,
            target=("membership", membership_id),
            request=request,
            details={"user": member.user.get_username(), "role": member.role},
        )
        case_id, user_id = found.case.id, member.user_id
        transaction.on_commit(lambda: streaming.revoke_access(case_id, user_id))
    messages.success(request, f"{member.user.get_username()} removed.")
    if member.user_id == request.user.id:
        return redirect("case-list")
    return redirect("member-list", case_id=found.case.id)
