"""django-scim2's endpoints under /scim/v2/, as its documentation sets them up."""

from django.urls import include, path

urlpatterns = [path("scim/v2/", include("django_scim.urls"))]
