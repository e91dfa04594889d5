"""What fuzzing misses, sent by hand to the production stack: every answer is
a 4xx with the API's JSON error body (or a correct 2xx), never a 5xx, an
HTML page or a dropped websocket."""

import time

import psycopg
import pytest

from .conftest import active_events, json_body
from .wsclient import Closed, HandshakeRejected

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def http(stack):
    with stack.client() as client:
        yield client


@pytest.fixture(scope="module")
def session_id(stack, http):
    return stack.new_session(http, prompt="The weather today is")


def assert_refused(response, status=400):
    assert response.status_code == status, f"{response.status_code}: {response.text[:300]}"
    body = json_body(response)
    assert body["error"] and body["message"], body
    return body


def test_prompts_with_nul_bytes_or_lone_surrogates_are_refused_and_nothing_is_stored(http, session_id):
    assert_refused(http.post(f"/api/sessions/{session_id}/set-prompt", json={"prompt": "cat\x00dog"}))
    body = assert_refused(
        http.post(f"/api/sessions/{session_id}/set-prompt", content=b'{"prompt": "half \\ud83e a parrot"}', headers=JSON)
    )
    assert "D83E" in body["message"].upper()
    assert json_body(http.get(f"/api/sessions/{session_id}"))["initial_prompt"] == "The weather today is"


def test_a_10_mb_body_is_refused_at_once_and_the_server_carries_on(http, session_id):
    started = time.monotonic()
    huge = b'{"prompt": "' + b"a" * 10_000_000 + b'"}'
    response = http.post(f"/api/sessions/{session_id}/set-prompt", content=huge, headers=JSON)
    assert response.status_code == 413
    assert json_body(response)["error"] == "Request too large"
    assert time.monotonic() - started < 10
    assert http.get(f"/api/sessions/{session_id}").status_code == 200


@pytest.mark.parametrize("document", ["[" * 30000 + "]" * 30000, '{"a":' * 30000 + "1" + "}" * 30000])
@pytest.mark.parametrize("path", ["/api/sessions", "/set-prompt", "/append-token", "/compare", "/api/generate-next-token"])
def test_deeply_nested_json_is_a_400_not_a_crash(http, session_id, document, path):
    url = path if path.startswith("/api/") else f"/api/sessions/{session_id}{path}"
    body = assert_refused(http.post(url, content=document, headers=JSON))
    assert body["error"] == "Invalid JSON"


@pytest.mark.parametrize("name", ["threshold", "temperature", "top_p"])
@pytest.mark.parametrize("value", ["abc", "NaN", "nan", "Infinity", "-Infinity", "1e400", "0x10", "1,5", "1e-400"])
def test_bad_numbers_in_the_query_are_refused(http, session_id, name, value):
    assert_refused(http.get(f"/api/sessions/{session_id}/next-token-probs", params={name: value}))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", '"abc"', '"NaN"', "[0.5]", "{}", "true"])
def test_bad_numbers_in_a_json_body_are_refused(http, session_id, literal):
    for name in ("threshold", "temperature"):
        body = f'{{"category": "sample", "{name}": {literal}}}'
        assert_refused(http.post(f"/api/sessions/{session_id}/append-token", content=body, headers=JSON))


def test_a_number_sent_as_a_string_is_read_as_that_number_and_stored_so(stack, stack_env, http):
    as_text, as_number = (stack.new_session(http, prompt="The weather today is") for _ in range(2))
    replies = []
    for session, threshold in ((as_text, "0.5"), (as_number, 0.5)):
        response = http.post(
            f"/api/sessions/{session}/append-token", json={"category": "sample", "threshold": threshold, "seed": 7}
        )
        assert response.status_code == 200, response.text
        replies.append(json_body(response))
    text_reply, number_reply = replies
    assert text_reply["appended_token"] == number_reply["appended_token"]
    # At 0.5 no token of this prompt is above the threshold: Other holds the whole vocabulary.
    assert text_reply["other_category_info"]["token_count"] == number_reply["other_category_info"]["token_count"] == 49152
    assert text_reply["appended_token"]["category"] == "other"
    stored = active_events(stack_env["DATABASE_URL"], as_text, "position, token_id, token_text, category")
    token = text_reply["appended_token"]
    assert stored == [(0, token["token_id"], token["token_text"], "other")]


@pytest.mark.parametrize("token_id", ["-1", "49152", "1e308", "9223372036854775808", "1" + "0" * 30, "true", '"5"', "1.5", "null"])
def test_negative_huge_and_mistyped_token_ids_are_refused(http, session_id, token_id):
    before = json_body(http.get(f"/api/sessions/{session_id}"))["generation_count"]
    body = f'{{"token_id": {token_id}}}'
    assert_refused(http.post(f"/api/sessions/{session_id}/append-token", content=body, headers=JSON))
    assert json_body(http.get(f"/api/sessions/{session_id}"))["generation_count"] == before


def test_an_emoji_split_across_tokens_comes_back_whole_once_all_its_tokens_are_appended(stack, http):
    parrot = "🦜"
    with stack.websocket() as ws:
        ws.recv_json()
        ws.send_json({"type": "tokenize", "text": parrot})
        while (reply := ws.recv_json())["type"] != "tokens":
            pass
    ids = reply["ids"]
    assert len(ids) >= 2, "pick an emoji this tokenizer splits"
    session_id = stack.new_session(http, prompt="My pet:")
    texts = []
    for token_id in ids:
        appended = http.post(f"/api/sessions/{session_id}/append-token", json={"token_id": token_id})
        assert appended.status_code == 200, appended.text
        texts.append(json_body(appended)["current_text"])
    assert texts[-1] == "My pet:" + parrot
    assert parrot not in texts[0]  # half an emoji is shown as a replacement character, not garbage bytes
    state = json_body(http.get(f"/api/sessions/{session_id}"))
    assert state["current_text"] == "My pet:" + parrot
    assert [t["token_id"] for t in state["token_history"]] == ids
    exported = http.get(f"/api/sessions/{session_id}/export", params={"format": "csv"})
    assert exported.status_code == 200


# --------------------------------------------------------------------------- websocket


def test_websocket_frames_that_are_not_json_binary_huge_or_too_deep_get_an_error_and_the_socket_stays(stack):
    with stack.websocket() as ws:
        assert ws.recv_json()["type"] == "hello"
        frames = [
            ("text", "this is not json {"),
            ("binary", b"\x00\x01\x02"),
            ("text", "x" * 1_000_000),
            ("text", '{"type": "start", "text": "' + "y" * 1_000_000 + '"}'),
            ("text", "[" * 100_000 + "]" * 100_000),
            ("text", '{"type": "start", "text": "\\ud800"}'),
            ("text", '{"type": "start", "text": "Hi", "temperature": NaN}'),
            ("text", '{"type": "start", "text": "Hi", "temperature": "hot"}'),
            ("text", '{"type": "step", "token_id": -1}'),
            ("text", "null"),
        ]
        for kind, frame in frames:
            time.sleep(0.06)  # stay under the per-socket message rate
            ws.send_binary(frame) if kind == "binary" else ws.send_text(frame)
            try:
                while (reply := ws.recv_json(timeout=10))["type"] == "models":
                    pass
            except Closed as closed:
                pytest.fail(f"the server closed the socket ({closed.code}) after {frame[:40]!r}")
            assert reply["type"] == "error", (frame[:40], reply)
            assert reply["message"]
        ws.send_json({"type": "start", "text": "Still here", "max_tokens": 2, "speed_ms": 100})
        while (reply := ws.recv_json(timeout=20))["type"] not in ("done", "error"):
            pass
        assert reply["type"] == "done", reply


@pytest.mark.parametrize("origin", ["http://evil.example", None, "null"])
def test_a_websocket_from_a_foreign_or_missing_origin_is_refused(stack, origin):
    with pytest.raises(HandshakeRejected) as refused:
        stack.websocket(origin=origin)
    assert refused.value.status == 403


# --------------------------------------------------------------------------- browser sessions


@pytest.fixture(scope="module")
def signed_in(stack):
    return stack.session_cookie("csrf-student")


def test_a_signed_in_browser_cannot_be_made_to_post_without_a_csrf_token(stack, signed_in):
    with stack.client(cookies=signed_in) as browser:
        forged = browser.post("/api/sessions", json={})
        body = assert_refused(forged, status=403)
        assert "CSRF" in body["message"]
        browser.cookies.set("csrftoken", "a" * 32)  # on the client: per-request cookies are deprecated in httpx
        with_token = browser.post("/api/sessions", json={}, headers={"X-CSRFToken": "a" * 32})
        assert with_token.status_code == 201, with_token.text
        session_id = json_body(with_token)["session_id"]
        assert_refused(browser.delete(f"/api/sessions/{session_id}"), status=403)
        assert browser.get(f"/api/sessions/{session_id}").status_code == 200


def test_anonymous_clients_need_no_csrf_token_as_the_seed_api_is_plain_curl(http):
    assert http.post("/api/sessions", json={}).status_code == 201


def test_a_signed_in_playground_run_with_a_nul_byte_is_refused_and_nothing_is_saved(stack, stack_env, signed_in):
    with stack.websocket(cookies=signed_in) as ws:
        ws.recv_json()
        ws.send_json({"type": "start", "text": "nul\x00here", "max_tokens": 2, "speed_ms": 100})
        while (reply := ws.recv_json(timeout=20))["type"] not in ("started", "token", "done", "error"):
            pass
        assert reply["type"] == "error", reply
        assert (reply["code"], reply["field"]) == ("invalid_field", "text") and "nul" in reply["message"].lower()
        ws.send_json({"type": "save", "title": "nul"})
        while (reply := ws.recv_json(timeout=20))["type"] not in ("saved", "error"):
            pass
        assert reply["type"] == "error", reply  # nothing ran, nothing to save
    with psycopg.connect(stack_env["DATABASE_URL"]) as conn:
        (runs,) = conn.execute(
            "select count(*) from playground_playgroundrun r join auth_user u on u.id = r.owner_id where u.username = %s",
            ("csrf-student",),
        ).fetchone()
    assert runs == 0
