"""The local broker's class-data archive: written once by a broker that stops cleanly, mapped by every later one."""

from __future__ import annotations

from services.devkafka import LocalKafka


def test_the_first_clean_stop_keeps_the_archive_and_later_brokers_map_it(tmp_path):
    libs = tmp_path / "kafka-abc" / "libs"
    libs.mkdir(parents=True)
    first = LocalKafka(tmp_path / "one", progress=lambda *_: None)
    (first_options,) = [o for o in first._class_data_sharing(libs) if o.startswith("-XX:") and "Archive" in o]
    assert first_options.startswith("-XX:ArchiveClassesAtExit=")
    written = first_options.split("=", 1)[1]
    assert written.startswith(str(tmp_path / "one"))  # its own file: two brokers at once never share one
    # The JVM writes the archive as it exits; the stop renames it into place beside the jars.
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "broker-cds.partial.jsa").write_bytes(b"archive")
    first._keep_archive()
    second = LocalKafka(tmp_path / "two", progress=lambda *_: None)
    options = second._class_data_sharing(libs)
    mapped = [o for o in options if o.startswith("-XX:SharedArchiveFile=")]
    assert mapped and (libs.parent / mapped[0].split("=", 1)[1].rsplit("/", 1)[1]).read_bytes() == b"archive"


def test_a_broker_killed_before_writing_its_archive_leaves_none(tmp_path):
    libs = tmp_path / "kafka-abc" / "libs"
    libs.mkdir(parents=True)
    broker = LocalKafka(tmp_path / "one", progress=lambda *_: None)
    broker._class_data_sharing(libs)
    broker._keep_archive()  # nothing was written (kill -9): no archive, the next broker writes one
    assert not list(libs.parent.glob("*.jsa"))
    assert any(o.startswith("-XX:ArchiveClassesAtExit=") for o in broker._class_data_sharing(libs))
