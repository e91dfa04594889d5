"""The wheel API, exactly as seeds/token-wheel-api.md plus its future endpoints.

One view per operation: validate input, call a service, return its data."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from common.rendering import render
from modelworker import client

from . import predict, reports, services, steps
from . import serializers as s
from .throttles import CreateSessionThrottle, SessionRateThrottle

ERRORS = {400: s.ErrorOut, 404: s.ErrorOut, 429: s.ErrorOut, 503: s.ErrorOut}


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SessionView(APIView):
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, SessionRateThrottle]

    def session(self, request, session_id, write=False):
        return services.get_session(session_id, request.user, write=write)


class SessionListView(APIView):
    throttle_classes = [*api_settings.DEFAULT_THROTTLE_CLASSES, CreateSessionThrottle]

    @extend_schema(request=s.CreateSessionIn, responses={201: s.SessionCreatedOut, **ERRORS}, operation_id="create_session")
    def post(self, request):
        data = _validated(s.CreateSessionIn, request.data if request.data is not None else {})
        body = request.data if isinstance(request.data, dict) else {}
        session = services.start_session(
            request, data.get("model_name"), body.get("classroom_id", ...), body.get("lesson_id"), data.get("seed", ...)
        )
        return Response(render(s.SessionCreatedOut, session), status=status.HTTP_201_CREATED)


class SessionDetailView(SessionView):
    @extend_schema(responses={200: s.SessionOut, **ERRORS}, operation_id="get_session")
    def get(self, request, session_id):
        return Response(render(s.SessionOut, reports.session_state(self.session(request, session_id))))

    @extend_schema(responses={200: s.DeletedOut, **ERRORS}, operation_id="delete_session")
    def delete(self, request, session_id):
        return Response(render(s.DeletedOut, services.delete_session(self.session(request, session_id, write=True))))


class SetPromptView(SessionView):
    @extend_schema(request=s.SetPromptIn, responses={200: s.SetPromptOut, **ERRORS}, operation_id="set_prompt")
    def post(self, request, session_id):
        session = self.session(request, session_id, write=True)
        data = _validated(s.SetPromptIn, request.data)
        return Response(render(s.SetPromptOut, services.set_prompt(session, data["prompt"])))


class NextTokenProbsView(SessionView):
    @extend_schema(parameters=[s.NextTokenProbsIn], responses={200: s.NextTokenProbsOut, **ERRORS}, operation_id="next_token_probs")
    def get(self, request, session_id):
        session = self.session(request, session_id, write=True)
        params = _validated(s.NextTokenProbsIn, request.query_params)
        sent = {k: v for k, v in params.items() if k in request.query_params}
        return Response(render(s.NextTokenProbsOut, services.next_token_probs(session, sent)))


class AppendTokenView(SessionView):
    @extend_schema(request=s.AppendTokenIn, responses={200: s.AppendTokenOut, 409: s.ErrorOut, **ERRORS}, operation_id="append_token")
    def post(self, request, session_id):
        session = self.session(request, session_id, write=True)
        data = _validated(s.AppendTokenIn, request.data)
        return Response(render(s.AppendTokenOut, steps.append_token(session, data)))


class UndoView(SessionView):
    @extend_schema(request=None, responses={200: s.UndoOut, **ERRORS}, operation_id="undo")
    def post(self, request, session_id):
        return Response(render(s.UndoOut, steps.undo(self.session(request, session_id, write=True))))


class StatisticsView(SessionView):
    @extend_schema(responses={200: s.StatisticsOut, **ERRORS}, operation_id="statistics")
    def get(self, request, session_id):
        return Response(render(s.StatisticsOut, reports.statistics(self.session(request, session_id))))


class ForkView(SessionView):
    @extend_schema(request=None, responses={201: s.SessionOut, **ERRORS}, operation_id="fork")
    def post(self, request, session_id):
        copy = services.fork(self.session(request, session_id), request.user)
        return Response(render(s.SessionOut, reports.session_state(copy)), status=status.HTTP_201_CREATED)


class CompareView(SessionView):
    @extend_schema(request=s.CompareIn, responses={200: s.CompareOut, **ERRORS}, operation_id="compare")
    def post(self, request, session_id):
        session = self.session(request, session_id)
        data = _validated(s.CompareIn, request.data if request.data is not None else {})
        return Response(render(s.CompareOut, reports.compare(session, data)))


class GuessOptionsView(SessionView):
    @extend_schema(responses={200: s.GuessOptionsOut, **ERRORS}, operation_id="guess_options")
    def get(self, request, session_id):
        return Response(render(s.GuessOptionsOut, predict.options(self.session(request, session_id))))


class GuessView(SessionView):
    @extend_schema(request=s.GuessIn, responses={201: s.GuessMadeOut, 409: s.ErrorOut, **ERRORS}, operation_id="guess")
    def post(self, request, session_id):
        session = self.session(request, session_id, write=True)
        data = _validated(s.GuessIn, request.data)
        made = predict.guess(session, request.user, data)
        return Response(render(s.GuessMadeOut, made), status=status.HTTP_201_CREATED)


class SeedView(SessionView):
    @extend_schema(request=s.SeedIn, responses={200: s.SessionOut, **ERRORS}, operation_id="set_seed")
    def post(self, request, session_id):
        session = self.session(request, session_id, write=True)
        data = _validated(s.SeedIn, request.data)
        return Response(render(s.SessionOut, reports.session_state(services.set_seed(session, data["seed"]))))


class ExportView(SessionView):
    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"], required=False)],
        responses={(200, "application/json"): dict, (200, "text/csv"): str, **ERRORS},
        operation_id="export",
    )
    def get(self, request, session_id):
        session = self.session(request, session_id)
        fmt = _validated(s.ExportIn, request.query_params)["format"]
        body, content_type, filename = reports.export(session, fmt)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ModelListView(APIView):
    @extend_schema(responses={200: s.ModelsOut, 503: s.ErrorOut}, operation_id="list_models")
    def get(self, request):
        models = services.model_call(client.models)
        return Response(render(s.ModelsOut, {"models": models}))
