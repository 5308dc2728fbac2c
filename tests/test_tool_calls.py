"""Tool calls on the wire: the demo server sends them as the OpenAI API does (checked with
the official client), the openai: provider reads them streamed and not, runs store them,
and snapshots replay them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import write_dataset
from workbench import golden, providers
from workbench.demo.server import DemoServer
from workbench.demo.tools import TOOLS
from workbench.errors import DatasetError
from workbench.runner import EvalOptions, run_eval
from workbench.store import Store

ORDER_TICKET = "My order ORD-48213 never arrived and tracking has not moved in a week."
PLAIN_TICKET = "I was charged twice for my subscription this month. Please refund one."


def user(ticket: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Route the support ticket with the tools."},
        {"role": "user", "content": f"<ticket>\n{ticket}\n</ticket>"},
    ]


@pytest.fixture(scope="module")
def server() -> Any:
    with DemoServer() as s:
        yield s


def test_the_official_client_reads_the_demo_servers_tool_calls(server: DemoServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="not-needed")
    plain = client.chat.completions.create(
        model="triage-v1", messages=user(PLAIN_TICKET), tools=TOOLS, tool_choice="auto"
    )
    choice = plain.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls or []
    assert calls[0].function.name == "set_ticket_fields"
    args = json.loads(calls[0].function.arguments)
    assert args["category"] == "billing" and set(args) >= {"priority", "needs_human", "summary"}
    # streamed: the client's own accumulator assembles the fragments into the same calls
    with client.chat.completions.stream(
        model="triage-v1", messages=user(PLAIN_TICKET), tools=TOOLS, tool_choice="auto"
    ) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in streamed] == [
        (c.id, c.function.name, c.function.arguments) for c in calls
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    # a named function is the only call; none answers in text
    named = client.chat.completions.create(
        model="triage-v1",
        messages=user(ORDER_TICKET),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "escalate"}},
    )
    assert [c.function.name for c in named.choices[0].message.tool_calls or []] == ["escalate"]
    text = client.chat.completions.create(
        model="triage-v1", messages=user(PLAIN_TICKET), tools=TOOLS, tool_choice="none"
    )
    assert text.choices[0].message.tool_calls is None and text.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        client.chat.completions.create(
            model="triage-v1",
            messages=user(PLAIN_TICKET),
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "delete_everything"}},
        )


def test_a_multi_turn_conversation_continues_after_the_tool_result(server: DemoServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="not-needed")
    first = (
        client.chat.completions.create(model="triage-v1", messages=user(ORDER_TICKET), tools=TOOLS)
        .choices[0]
        .message
    )
    (lookup,) = first.tool_calls or []
    assert lookup.function.name == "lookup_order"
    assert json.loads(lookup.function.arguments) == {"order_id": "ORD-48213"}
    history = [
        *user(ORDER_TICKET),
        first.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": lookup.id, "content": '{"status": "lost"}'},
    ]
    second = (
        client.chat.completions.create(model="triage-v1", messages=history, tools=TOOLS)
        .choices[0]
        .message
    )
    names = [c.function.name for c in second.tool_calls or []]
    assert names == ["set_ticket_fields", "escalate"]  # a lost order goes to people


def _complete(url: str, stream: bool, messages: list[dict[str, Any]]) -> providers.Response:
    async def go() -> providers.Response:
        provider = providers.build("openai:triage-v2", base_url=url, stream=stream)
        await provider.start()
        try:
            request = providers.Request(messages=messages, tools=TOOLS, tool_choice="auto")
            return await provider.complete(request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "ticket",
    [
        ORDER_TICKET,
        PLAIN_TICKET,
        "URGENT!!! Someone logged into my account from another country, I want a person NOW",
    ],
)
def test_streamed_and_plain_tool_calls_are_identical(server: DemoServer, ticket: str) -> None:
    plain = _complete(server.url, False, user(ticket))
    streamed = _complete(server.url, True, user(ticket))
    assert plain.tool_calls and streamed.tool_calls == plain.tool_calls
    assert plain.finish_reason == streamed.finish_reason == "tool_calls"
    assert streamed.ttft_ms is not None and plain.text == streamed.text == ""


TOOL_CARD = {
    "name": "tiny-tools",
    "prompt": {
        "system": "Route the support ticket with the tools.",
        "user": "<ticket>\n{{ ticket }}\n</ticket>",
    },
    "tools": TOOLS,
    "tool_choice": "auto",
    "scorers": [{"name": "exact"}],
}


def _tool_set(tmp_path: Path) -> Path:
    cases = [
        {"id": "t1", "input": {"ticket": ORDER_TICKET}, "expected": None},
        {"id": "t2", "input": {"ticket": PLAIN_TICKET}, "expected": None},
        {
            "id": "t3",
            "input": {
                "messages": [
                    {"role": "user", "content": f"<ticket>\n{ORDER_TICKET}\n</ticket>"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "lookup_order",
                                    "arguments": '{"order_id":"ORD-48213"}',
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
                ]
            },
            "expected": None,
        },
        {"id": "t4", "input": {"ticket": PLAIN_TICKET}, "expected": None, "tool_choice": "none"},
    ]
    return write_dataset(tmp_path / "tiny-tools", cases, TOOL_CARD)


def test_a_run_stores_each_call_with_its_parsed_arguments_and_replays_them(
    tmp_path: Path, store: Store
) -> None:
    folder = _tool_set(tmp_path)
    snaps = tmp_path / "snaps"
    for stream in (False, True):
        s = run_eval(
            str(folder),
            "demo:triage-v1",
            store=store,
            options=EvalOptions(record=str(snaps) if not stream else None, stream=stream),
        )
        frame = store.results_frame(s.run_id).set_index("case_id")
        calls = frame["tool_calls"]
        assert [c["name"] for c in calls["t1"]] == ["lookup_order"]
        assert calls["t1"][0]["parsed"] == {"order_id": "ORD-48213"}
        assert calls["t2"][0]["name"] == "set_ticket_fields" and "error" not in calls["t2"][0]
        assert [c["name"] for c in calls["t3"]] == ["set_ticket_fields"]  # after the result
        assert calls["t4"] is None and frame.loc["t4", "output"]  # tool_choice none: text
        assert frame.loc["t1", "finish_reason"] == "tool_calls"
        if not stream:
            recorded = calls.to_dict()
        else:
            assert calls.to_dict() == recorded
    before = (snaps / "demo_triage-v1.jsonl").read_bytes()
    replayed = run_eval(
        str(folder), "demo:triage-v1", store=store, options=EvalOptions(replay=str(snaps))
    )
    assert (
        store.results_frame(replayed.run_id).set_index("case_id")["tool_calls"].to_dict()
        == recorded
    )
    assert (snaps / "demo_triage-v1.jsonl").read_bytes() == before
    entry = json.loads(before.splitlines()[0])
    assert "tools" in entry["request"] and entry["request"]["tool_choice"] == "auto"


def test_arguments_that_are_not_json_are_kept_with_the_parse_error() -> None:
    from workbench.tools import stored_calls

    (call,) = stored_calls([{"id": "c", "name": "f", "arguments": '{"a": 1'}]) or []
    assert call["arguments"] == '{"a": 1' and "parsed" not in call
    assert call["error"].startswith("arguments are not JSON")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}
                ]
            },
            "not a valid JSON Schema",
        ),
        (
            {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice: names 'nope'",
        ),
        ({"tool_choice": "sometimes"}, "tool_choice: must be none, auto, required"),
    ],
)
def test_bad_tools_in_the_card_name_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    folder = write_dataset(
        tmp_path / "bad",
        [{"id": "a", "input": {"ticket": "x"}, "expected": None}],
        {**TOOL_CARD, **change},
    )
    with pytest.raises(DatasetError, match="dataset.yaml:") as err:
        golden.load_dataset(folder)
    assert message in str(err.value)


def test_a_python_agent_returns_its_trajectory_and_its_calls_are_stored(
    tmp_path: Path, store: Store
) -> None:
    folder = write_dataset(
        tmp_path / "agent",
        [{"id": "a1", "input": {"ticket": ORDER_TICKET}, "expected": None}],
        {**TOOL_CARD, "name": "agent"},
    )
    s = run_eval(str(folder), "python:tests.agent_app:agent", store=store)
    row = store.results_frame(s.run_id).iloc[0]
    assert [c["name"] for c in row["tool_calls"]] == ["lookup_order", "set_ticket_fields"]
    assert row["tool_calls"][1]["parsed"]["category"] == "billing"
    assert [step["role"] for step in row["steps"]] == ["assistant", "tool", "assistant"]
    assert row["steps"][0]["latency_ms"] == 12.0 and row["tokens_in"] == 110
