"""Bearer-token authentication of every request: one database read, as DRF's TokenAuthentication."""

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

from scimpeer.models import ApiToken


class BearerTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.user = AnonymousUser()
        scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and key:
            token = ApiToken.objects.select_related("user").filter(key=key).first()
            if token is not None and token.user.is_active:
                request.user = token.user
        return self.get_response(request)
