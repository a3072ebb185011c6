import time
import uuid

from labtrack.services.run_ids import new_run_id


def test_run_ids_are_version_7_uuids_as_32_hex_digits(monkeypatch):
    created_ms = 1_795_791_582_755
    monkeypatch.setattr(time, "time_ns", lambda: created_ms * 1_000_000 + 123_456)
    run_id = new_run_id()
    parsed = uuid.UUID(hex=run_id)
    assert (len(run_id), run_id, parsed.version, parsed.variant) == (
        32, parsed.hex, 7, uuid.RFC_4122)
    assert parsed.int >> 80 == created_ms  # the first 48 bits are the creation millisecond


def test_run_ids_are_unique_and_ordered_by_creation_time():
    earlier = [new_run_id() for _ in range(10_000)]
    time.sleep(0.002)
    later = new_run_id()
    assert len(set(earlier)) == len(earlier)
    assert all(run_id < later for run_id in earlier)


def test_services_name_new_runs_with_them(service):
    run = service.create_run("0")
    assert uuid.UUID(hex=run.info.run_id).version == 7
