"""The playground's HTTP API: the seed's next-token endpoint and saved runs.
One view per operation: validate, call a service, return its data."""


from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from classrooms import access
from common.errors import AppError

from . import serializers as s
from . import runkind, services

ERRORS = {400: s.ErrorOut, 404: s.ErrorOut, 429: s.ErrorOut, 500: s.ErrorOut}
READ_ERRORS = {403: s.ErrorOut, 404: s.ErrorOut, 429: s.ErrorOut}


class GenerateNextTokenView(APIView):
    """The seed's endpoint. Works with plain curl (no cookie, no CSRF token);
    with a session cookie, the user's own sessions and runs are visible too
    (DRF then checks the CSRF token, as for every signed-in POST)."""

    @extend_schema(request=s.GenerateNextTokenIn, responses={200: s.GenerateNextTokenOut, **ERRORS}, operation_id="generate_next_token")
    def post(self, request):
        serializer = s.GenerateNextTokenIn(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        return Response(s.GenerateNextTokenOut(services.generate_next_token(request.user, serializer.validated_data)).data)


class RunListView(APIView):
    @extend_schema(responses={200: s.RunListOut, **READ_ERRORS}, operation_id="list_playground_runs")
    def get(self, request):
        if not request.user.is_authenticated:
            raise AppError("not_authenticated", "Sign in to see your saved runs.", 403, title="Not authenticated")
        runs = services.visible_runs(request.user).order_by("-created_at")[:200]
        return Response(s.RunListOut({"runs": runs}).data)


class RunDetailView(APIView):
    @extend_schema(responses={200: s.RunDetailOut, **READ_ERRORS}, operation_id="get_playground_run")
    def get(self, request, run_id):
        return Response(s.RunDetailOut(services.get_run(request.user, run_id)).data)

    @extend_schema(responses={200: s.RunDeletedOut, **READ_ERRORS}, operation_id="delete_playground_run")
    def delete(self, request, run_id):
        run = services.get_run(request.user, run_id)
        if not access.can_change(request.user, run):
            raise AppError("forbidden", "Only the owner may delete a saved run.", 403)
        run.delete()
        return Response(s.RunDeletedOut({"deleted": True, "run_id": run_id}).data)


class RunExportView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "text"], required=False)],
        responses={(200, "application/json"): dict, (200, "text/plain"): str, 400: s.ErrorOut, **READ_ERRORS},
        operation_id="export_playground_run",
    )
    def get(self, request, run_id):
        run = services.get_run(request.user, run_id)
        fmt = request.query_params.get("format", "json")
        if fmt not in runkind.EXPORT_FORMATS:
            raise AppError("invalid_request", "format must be json or text.")
        # The one export of a run: the same file as My runs' download.
        body, content_type, filename = runkind.export(run, fmt)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
