from fleet.drill import Publish, Sent, build_report, build_result_report, http_stream, paced, read_back


def _pubs(n, confirmed=None):
    confirmed = set(range(n)) if confirmed is None else confirmed
    return [
        Publish(i, 100.0 + i * 0.1, "default", i in confirmed, "" if i in confirmed else "OperationalError")
        for i in range(n)
    ]


def _run(seq, t, host="worker1", redelivered=False):
    return {"seq": seq, "t": t, "host": host, "redelivered": redelivered}


def test_counts_lost_and_duplicated():
    executions = [_run(0, 101.0), _run(1, 101.1), _run(1, 103.0, "worker2", True), _run(3, 101.3)]
    report = build_report("r", _pubs(4), executions)
    assert (report.sent, report.confirmed, report.completed) == (4, 4, 3)
    assert report.lost == [2]
    assert report.duplicated == [1]
    assert report.redelivered == 1
    assert report.by_host == {"worker1": 3, "worker2": 1}
    assert not report.ok


def test_unconfirmed_publishes_are_errors_not_losses():
    report = build_report("r", _pubs(3, confirmed={0, 2}), [_run(0, 1.0), _run(2, 2.0)])
    assert report.lost == []
    assert report.publish_errors == 1
    assert report.errors == ["OperationalError"]
    assert report.ok


def test_recovery_figures_around_the_fault():
    times = [10.0, 10.5, 11.0, 15.0, 15.5, 16.0]
    executions = [_run(i, t) for i, t in enumerate(times)]
    report = build_report("r", _pubs(6), executions, fault_at=11.2)
    assert report.first_completion_after_fault == 15.0 - 11.2
    assert report.gap_around_fault == 15.0 - 11.0
    assert report.longest_gap == 4.0


def test_no_fault_means_no_fault_figures():
    report = build_report("r", _pubs(2), [_run(0, 1.0), _run(1, 2.0)])
    assert report.first_completion_after_fault is None
    assert report.gap_around_fault is None
    assert report.longest_gap == 1.0


def test_a_publish_error_names_the_error_it_wraps():
    from amqp.exceptions import MessageNacked
    from fleet.errors import describe_error
    from kombu.exceptions import OperationalError

    try:
        try:
            raise MessageNacked()
        except MessageNacked as nack:
            raise OperationalError(str(nack)) from nack
    except OperationalError as exc:
        assert describe_error(exc) == "OperationalError (MessageNacked)"
    assert describe_error(ValueError("bad")) == "ValueError: bad"


def test_http_stream_counts_statuses_and_errors_and_keeps_the_accepted_task_ids(tmp_path):
    answers = iter([202, 202, 503, OSError("connection refused"), 202])
    ready = tmp_path / "ready"
    sent = []

    def post(url):
        sent.append(url)
        if len(sent) == 3:
            assert not ready.exists()
        if len(sent) == 4:
            assert ready.read_text() == "3\n"
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer, ({"task_id": f"t{len(sent)}"} if answer == 202 else {"error": "down"})

    ticks = iter(range(1000, 1005))
    report = http_stream(
        post,
        "http://api/tasks/ping",
        count=5,
        rate=1000,
        fault_after=3,
        ready_file=str(ready),
        wall_clock=lambda: float(next(ticks)),
    )
    assert report["sent"] == 5
    assert report["by_status"] == {"202": 3, "503": 1}
    assert report["errors"] == 1
    assert report["non_2xx"] == 2
    assert report["accepted"] == ["t1", "t2", "t5"]
    assert [(r["seq"], r["sent_at"], r["answer"]) for r in report["non_2xx_requests"]] == [
        (2, 1002.0, "HTTP 503"),
        (3, 1003.0, "OSError: connection refused"),
    ]


def test_read_back_retries_until_success_and_reports_what_never_succeeded():
    clock = FakeClock()
    rounds = {"a": iter([(200, {"state": "PENDING"}), (200, {"state": "SUCCESS"})]), "b": None, "c": None}

    def get(url):
        task_id = url.rsplit("/", 1)[1]
        if task_id == "a":
            return next(rounds["a"])
        if task_id == "b":
            raise OSError("connection refused")
        return 200, {"state": "PENDING"}

    got = read_back(get, "http://api/tasks/{task_id}", ["a", "b", "c"], timeout=5, clock=clock, sleep=clock.sleep)
    assert got["read_back"] == 3
    assert got["succeeded"] == 1
    assert got["lost"] == ["b", "c"]
    assert got["states"] == {"OSError: connection refused": 1, "PENDING": 1}
    assert got["read_seconds"] >= 5


def test_read_back_stops_as_soon_as_everything_succeeded():
    clock = FakeClock()
    got = read_back(
        lambda url: (200, {"state": "SUCCESS"}), "u/{task_id}", ["x", "y"], timeout=60, clock=clock, sleep=clock.sleep
    )
    assert got == {"read_back": 2, "succeeded": 2, "lost": [], "states": {}, "read_seconds": 0.0}
    assert clock.slept == []


class FakeClock:
    """A monotonic clock that moves only when slept on or told to (work that takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_paced_keeps_the_rate_from_the_start():
    clock = FakeClock()
    steps = list(paced(4, rate=2, clock=clock, sleep=clock.sleep))
    assert steps == [0, 1, 2, 3]
    assert clock.slept == [0.5, 0.5, 0.5]
    assert clock.now == 101.5


def test_paced_catches_up_after_a_slow_step_instead_of_stretching():
    clock = FakeClock()
    for seq in paced(4, rate=2, clock=clock, sleep=clock.sleep):
        if seq == 0:
            clock.now += 1.2  # the first step's work overran two slots
    # Steps 1 and 2 were due at +0.5 and +1.0: both come at once; step 3 waits for +1.5.
    assert clock.slept == [0.3]
    assert clock.now == 101.5


def test_result_report_counts_missing_and_wrong_results_as_lost_and_failed_publishes_apart():
    tasks = [Sent(0, "a", 1000), Sent(1, None, 1001, "OperationalError"), Sent(2, "c", 1002), Sent(3, "d", 1003)]
    chords = [Sent(0, "x", 10), Sent(1, "y", 15)]
    report = build_result_report("r", tasks, chords, {0: True, 2: False}, {0: True, 1: True}, fault_at=5.0)
    assert (report.sent, report.confirmed, report.publish_errors, report.results_ok) == (4, 3, 1, 1)
    assert report.lost == [2, 3]  # 2: wrong value or failure; 3: never read back
    assert (report.chords_confirmed, report.chords_ok, report.chords_lost) == (2, 2, [])
    assert not report.ok and report.errors == ["OperationalError"]
    assert "LOST 2" in report.summary()


def test_result_report_is_ok_when_every_confirmed_result_is_there():
    report = build_result_report("r", [Sent(0, "a", 1000), Sent(1, None, 1001)], [], {0: True}, {})
    assert report.ok and report.lost == [] and report.publish_errors == 1
