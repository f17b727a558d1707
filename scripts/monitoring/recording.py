"""Recording rules: the per-service RED and resource series that alerts and dashboards read.

Names do not carry the window, because the window depends on the timing profile while the
dashboards and drills must work against either profile; the window is the profile's
``rate_window_s`` (see the group name in the rendered file).
"""

from __future__ import annotations

from services.common.profiles import TimingProfile, duration

from .model import RecordingRule

JOB = "services"
SERVICES = f'job="{JOB}"'
# The same targets scraped more often for `up` only (prometheus_config.health_job): "down" alerts read it.
HEALTH_JOB = "services-health"
HEALTH = f'job="{HEALTH_JOB}"'

HTTP_RATE = "service:http_requests:rate"
HTTP_ERROR_RATIO = "service:http_request_errors:ratio"
HTTP_P95 = "service:http_request_duration_seconds:p95"
GRPC_RATE = "service:grpc_requests:rate"
GRPC_ERROR_RATIO = "service:grpc_request_errors:ratio"
GRPC_P95 = "service:grpc_server_handling_seconds:p95"
# Requests each p95 is computed from: the +Inf bucket of its histogram over the same window.
HTTP_P95_REQUESTS = "service:http_request_duration_seconds:requests"
GRPC_P95_REQUESTS = "service:grpc_server_handling_seconds:requests"
CPU_RATE = "service:process_cpu_seconds:rate"
# CPU asked for: used plus waited for on a run queue (services/common/cpu_wait.py); the CPU used
# alone where the kernel keeps no schedstat. A dashboard line, not an alert: on a crowded host every
# process waits several times what it runs (measured 4-6x at load 4 on 2 cores), so a lightly busy
# service would read as saturated.
CPU_DEMAND = "service:process_cpu_demand:rate"
MEMORY = "service:process_resident_memory_bytes:max"
MEMORY_PREDICTED = "service:process_resident_memory_bytes:predicted"
ERROR_LOG_RATE = "service:log_records_errors:rate"
ERROR_LOG_LEVELS = 'level=~"error|critical"'

# gRPC codes that mean the server failed, not that the caller asked for something wrong.
GRPC_SERVER_ERROR_CODES = ("Unknown", "DeadlineExceeded", "Unimplemented", "Internal", "Unavailable", "DataLoss")
GRPC_ERRORS = f'grpc_code=~"{"|".join(GRPC_SERVER_ERROR_CODES)}"'
HTTP_ERRORS = 'status=~"5.."'


def memory_window_s(profile: TimingProfile) -> int:
    """The window predict_linear fits memory growth over: twice the capacity `for`."""
    return 2 * profile.for_capacity_s


def memory_horizon_s(profile: TimingProfile) -> int:
    """How far ahead MemoryGrowth looks: 24x the capacity `for` (4h in production, 12m in a drill)."""
    return 24 * profile.for_capacity_s


def error_ratio(metric: str, errors: str, selector: str, window: str, by: str = "service") -> str:
    """Errors over all, and 0 (not nothing) while there is traffic but no error series yet."""
    total = f"sum by ({by}) (rate({metric}{{{selector}}}[{window}]))"
    failed = f"sum by ({by}) (rate({metric}{{{selector},{errors}}}[{window}]))"
    return f"({failed} or 0 * {total})\n/\n{total}"


def recording_rules(profile: TimingProfile) -> tuple[RecordingRule, ...]:
    w = duration(profile.rate_window_s)
    p95 = "histogram_quantile(0.95, sum by (service, le) (rate({metric}{{{sel}}}[{w}])))"
    requests = 'sum by (service) (increase({metric}{{{sel},le="+Inf"}}[{w}]))'
    return (
        RecordingRule(HTTP_RATE, f"sum by (service) (rate(http_requests_total{{{SERVICES}}}[{w}]))"),
        RecordingRule(HTTP_ERROR_RATIO, error_ratio("http_requests_total", HTTP_ERRORS, SERVICES, w)),
        RecordingRule(HTTP_P95, p95.format(metric="http_request_duration_seconds_bucket", sel=SERVICES, w=w)),
        RecordingRule(GRPC_RATE, f"sum by (service) (rate(grpc_server_handled_total{{{SERVICES}}}[{w}]))"),
        RecordingRule(GRPC_ERROR_RATIO, error_ratio("grpc_server_handled_total", GRPC_ERRORS, SERVICES, w)),
        RecordingRule(GRPC_P95, p95.format(metric="grpc_server_handling_seconds_bucket", sel=SERVICES, w=w)),
        RecordingRule(
            HTTP_P95_REQUESTS, requests.format(metric="http_request_duration_seconds_bucket", sel=SERVICES, w=w)
        ),
        RecordingRule(
            GRPC_P95_REQUESTS, requests.format(metric="grpc_server_handling_seconds_bucket", sel=SERVICES, w=w)
        ),
        RecordingRule(CPU_RATE, f"max by (service) (rate(process_cpu_seconds_total{{{SERVICES}}}[{w}]))"),
        RecordingRule(
            CPU_DEMAND,
            f"max by (service) (\n  rate(process_cpu_seconds_total{{{SERVICES}}}[{w}])\n"
            f"  + rate(process_cpu_wait_seconds_total{{{SERVICES}}}[{w}])\n"
            f"  or rate(process_cpu_seconds_total{{{SERVICES}}}[{w}])\n)",
        ),
        RecordingRule(MEMORY, f"max by (service) (process_resident_memory_bytes{{{SERVICES}}})"),
        RecordingRule(
            MEMORY_PREDICTED,
            f"max by (service) (predict_linear(process_resident_memory_bytes{{{SERVICES}}}"
            f"[{duration(memory_window_s(profile))}], {memory_horizon_s(profile)}))",
        ),
        RecordingRule(
            ERROR_LOG_RATE, f"sum by (service) (rate(log_records_total{{{SERVICES},{ERROR_LOG_LEVELS}}}[{w}]))"
        ),
    )
