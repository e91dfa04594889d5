"""The engine's playground step (op_next_token) reports what the model saw."""


def test_next_token_reports_the_text_in_view(engine, smol):
    ids = smol.encode("One two three four five six seven eight")
    result = engine.op_next_token("smollm2-135m", ids, context_window=3, greedy=True)
    assert result["context_tokens"] == 3
    assert result["context_start"] == len(ids) - 3
    assert result["context_text"] == smol.decode(ids[-3:])
    whole = engine.op_next_token("smollm2-135m", ids, context_window=None, greedy=True)
    assert whole["context_start"] == 0 and whole["context_text"] == smol.decode(ids)
