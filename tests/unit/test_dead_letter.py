from fleet.celeryconfig import DEAD_LETTER_EXCHANGE
from fleet.dead_letter import describe, read_dead_letters
from kombu import Connection


def _dead_letter(connection, task_id):
    # What RabbitMQ publishes to the dead-letter exchange: Celery's headers plus its own.
    producer = connection.Producer()
    producer.publish(
        {"args": []},
        exchange=DEAD_LETTER_EXCHANGE,
        routing_key="default",
        headers={
            "id": task_id,
            "task": "fleet.drill_tasks.crash_worker_process",
            "argsrepr": "()",
            "kwargsrepr": "{}",
            "x-first-death-queue": "default",
            "x-first-death-reason": "delivery_limit",
            "x-delivery-count": 5,
        },
    )


def test_describe_reads_celery_and_rabbitmq_headers():
    entry = describe({"id": "t1", "task": "x", "x-death": [{"queue": "email", "reason": "delivery_limit"}]})
    assert entry["task_id"] == "t1"
    assert (entry["queue"], entry["reason"]) == ("email", "delivery_limit")
    assert describe({})["task_id"] is None


def test_listing_keeps_the_messages_and_remove_deletes_them():
    with Connection("memory://") as connection:
        read_dead_letters(connection)  # declares the exchange, queue and binding
        _dead_letter(connection, "t1")
        _dead_letter(connection, "t2")

        first = read_dead_letters(connection)
        assert [e["task_id"] for e in first] == ["t1", "t2"]
        assert first[0]["reason"] == "delivery_limit"
        assert first[0]["deliveries"] == 5

        assert [e["task_id"] for e in read_dead_letters(connection, remove=True)] == ["t1", "t2"]
        assert read_dead_letters(connection) == []


def test_limit_bounds_one_read():
    with Connection("memory://") as connection:
        read_dead_letters(connection)
        for n in range(3):
            _dead_letter(connection, f"t{n}")
        assert len(read_dead_letters(connection, limit=2)) == 2
        assert len(read_dead_letters(connection)) == 3
