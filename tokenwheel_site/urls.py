from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from modelworker.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Resolved per request: with the manifest storage the hashed name exists only after collectstatic.
    path("favicon.ico", lambda request: redirect(static("img/favicon.svg"), permanent=True)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (no inline script: CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("wheel.api_urls")),
    path("api/", include("playground.api_urls")),
    path("", include("wheel.urls")),
    path("", include("playground.urls")),
    path("", include("classrooms.urls")),
]

handler400 = "tokenwheel_site.errors.handler400"
handler404 = "tokenwheel_site.errors.handler404"
handler500 = "tokenwheel_site.errors.handler500"
