"""The operator's sampler decides, not the caller's traceparent flag."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from depot.services.common.telemetry import sampler


def _remote(trace_id: int, sampled: bool) -> object:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(trace_id, 0x1234, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def _decide(env: dict[str, str], trace_id: int, sampled: bool) -> Decision:
    result = sampler(env).should_sample(_remote(trace_id, sampled), trace_id, "rpc")
    return result.decision


@pytest.mark.parametrize("sampled", [True, False])
def test_always_off_ignores_a_caller_asking_for_sampling(sampled: bool) -> None:
    assert _decide({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0xABC, sampled) == Decision.DROP


@pytest.mark.parametrize("sampled", [True, False])
def test_always_on_ignores_a_caller_asking_for_none(sampled: bool) -> None:
    assert _decide({}, 0xABC, sampled) == Decision.RECORD_AND_SAMPLE


def test_ratio_decides_by_trace_id_whatever_the_flag() -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    low, high = 1, (1 << 64) - 1  # the ratio compares the trace id's low 64 bits
    assert _decide(env, low, sampled=False) == Decision.RECORD_AND_SAMPLE
    assert _decide(env, high, sampled=True) == Decision.DROP


@pytest.mark.parametrize(
    "env", [{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, {"OTEL_TRACES_SAMPLER": "jaeger"}]
)
def test_bad_settings_are_refused_by_name(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER"):
        sampler(env)
