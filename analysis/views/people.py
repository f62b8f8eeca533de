"""Staff user pages (admins): the people who may sign in, their status and staff roles.

Every change goes through analysis/users.py, which records it on the global audit chain.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from analysis import access, lockouts, twofactor, users
from analysis.models import AuditEvent

User = get_user_model()
HOW = [("link", "Single-use link (expires)"), ("password", "Temporary password")]
ROLE_CHOICES = [(users.ADMIN, "Admin"), (users.AUDITOR, "Auditor (audit trails, read-only)")]
STATUS_FILTERS = {
    "": Q(),
    "active": Q(is_active=True),
    "inactive": Q(is_active=False),
    "admin": Q(is_staff=True),
    "auditor": Q(groups__name=users.AUDITOR),
}


class InviteForm(forms.Form):
    username = forms.RegexField(regex=r"^[\w.@+-]{1,150}$", max_length=150)
    email = forms.EmailField(required=False)
    how = forms.ChoiceField(choices=HOW, initial="link", widget=forms.RadioSelect)
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    def clean_username(self) -> str:
        name = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=name).exists():
            raise forms.ValidationError("An account with this username already exists.")
        return name


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )


class ResetForm(forms.Form):
    how = forms.ChoiceField(choices=HOW, initial="password")


def _admin_or_404(request: HttpRequest) -> None:
    if not access.is_admin(request.user):
        raise Http404("No such page.")


def _person(request: HttpRequest, user_id: int):
    _admin_or_404(request)
    return get_object_or_404(User, pk=user_id)


@login_required
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    _admin_or_404(request)
    query, status = request.GET.get("q", "").strip(), request.GET.get("status", "")
    people = User.objects.filter(STATUS_FILTERS.get(status, Q())).distinct()
    if query:
        people = people.filter(
            Q(username__icontains=query) | Q(email__icontains=query) | Q(last_name__icontains=query)
        )
    people = people.annotate(n_cases=Count("memberships", distinct=True)).prefetch_related("groups")
    page = Paginator(people.order_by("username"), 50).get_page(request.GET.get("page"))
    locked = set(lockouts.locked_usernames())
    rows = [
        (person, sorted(users.staff_roles(person)), person.username in locked) for person in page
    ]
    context = {
        "page": page, "rows": rows, "q": query, "status": status,
        "statuses": list(STATUS_FILTERS), "locked_addresses": lockouts.locked_addresses(),
    }  # fmt: skip
    return render(request, "analysis/staff/users.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def user_invite(request: HttpRequest) -> HttpResponse:
    _admin_or_404(request)
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        link = data["how"] == "link"
        person, secret = users.invite(
            username=data["username"], email=data["email"], by=request.user, request=request,
            link=link,
        )  # fmt: skip
        users.set_staff_roles(person, set(data["roles"]), request=request)
        return _show_secret(request, person, secret, link)
    return render(request, "analysis/staff/user_invite.html", {"form": form})


def _show_secret(request: HttpRequest, person, secret: str, link: bool) -> HttpResponse:
    """The link or temporary password, shown to the admin once: it is kept nowhere."""
    url = request.build_absolute_uri(reverse("invitation-accept", args=[secret])) if link else ""
    context = {"person": person, "url": url, "password": "" if link else secret}
    return render(request, "analysis/staff/user_secret.html", context)


@login_required
@require_GET
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request, user_id)
    events = AuditEvent.objects.filter(target_type="user", target_id=str(person.pk))
    context = {
        "person": person,
        "roles": sorted(users.staff_roles(person)),
        "roles_form": RolesForm(initial={"roles": sorted(users.staff_roles(person))}),
        "reset_form": ResetForm(),
        "locked": person.username in lockouts.locked_usernames(),
        "has_2fa": twofactor.has_confirmed_authenticator(person),
        "n_cases": person.memberships.count(),
        "events": events.select_related("actor").order_by("-created_at")[:30],
    }
    return render(request, "analysis/staff/user_detail.html", context)


@login_required
@require_POST
def user_set_active(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request, user_id)
    active = request.POST.get("active") == "1"
    if person.pk == request.user.pk and not active:
        messages.error(request, "You cannot deactivate your own account.")
    elif person.is_active != active:
        users.set_active(person, active, request=request)
        state = "reactivated" if active else "deactivated; their sessions and sockets are closed"
        messages.success(request, f"{person.username} {state}.")
    return redirect("staff-user", user_id=person.pk)


@login_required
@require_POST
def user_set_roles(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request, user_id)
    form = RolesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown role.")
    elif person.pk == request.user.pk and users.ADMIN not in form.cleaned_data["roles"]:
        messages.error(request, "You cannot remove your own admin role.")
    else:
        users.set_staff_roles(person, set(form.cleaned_data["roles"]), request=request)
        messages.success(request, f"Staff roles of {person.username} saved.")
    return redirect("staff-user", user_id=person.pk)


@login_required
@require_POST
def user_reset_password(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request, user_id)
    form = ResetForm(request.POST)
    if not form.is_valid() or not person.is_active:
        messages.error(request, "Choose a link or a temporary password, for an active account.")
        return redirect("staff-user", user_id=person.pk)
    link = form.cleaned_data["how"] == "link"
    secret = users.reset_password(person, by=request.user, request=request, link=link)
    return _show_secret(request, person, secret, link)


@login_required
@require_POST
def user_reset_two_factor(request: HttpRequest, user_id: int) -> HttpResponse:
    person = _person(request, user_id)
    users.reset_two_factor(person, request=request)
    messages.success(request, f"{person.username} enrols a new authenticator at next sign-in.")
    return redirect("staff-user", user_id=person.pk)


@login_required
@require_POST
def unlock(request: HttpRequest) -> HttpResponse:
    _admin_or_404(request)
    username, address = request.POST.get("username", ""), request.POST.get("address", "")
    if not username and not address:
        messages.error(request, "Nothing to unlock.")
    else:
        cleared = lockouts.unlock(username=username, address=address, request=request)
        messages.success(request, f"Unlocked {username or address} ({cleared} record(s)).")
    target = User.objects.filter(username=username).first() if username else None
    return redirect("staff-user", user_id=target.pk) if target else redirect("staff-users")
