"""End-to-end tests of the web console in a real browser.

Starts a Gregor (the binary given as the first argument) on free ports, drives its console
in headless Chromium (Debian's, through Playwright) and checks what a user would see, with
confluent-kafka as an independent client producing, consuming and committing beside it. A
screenshot of every page goes to the screenshots directory (second argument).

Prints one line per test (PASS/FAIL) and exits non-zero if any failed.
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 20_000


class Gregor:
    """A broker on free loopback ports, with its data in a temporary directory."""

    def __init__(self, binary):
        self.dir = tempfile.TemporaryDirectory(prefix="gregor-console-")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "-o", "http.listen=127.0.0.1:0",
             "--data-dir", os.path.join(self.dir.name, "data"), "--log-level", "warn"],
            stdout=subprocess.PIPE, text=True)
        self.kafka = self.http = None
        deadline = time.time() + 60
        while self.kafka is None and time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("gregor http listening on "):
                self.http = "http://" + line.split()[-1]
            elif line.startswith("gregor listening on "):
                self.kafka = line.split()[-1]
        if self.kafka is None or self.http is None:
            self.stop()
            raise RuntimeError("gregor did not start")

    def api(self, path, method="GET", body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.http + "/api" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.dir.cleanup()


def produce(broker, topic, records):
    """Writes (key, value, headers) records with confluent-kafka and waits for every ack."""
    producer = Producer({"bootstrap.servers": broker.kafka, "linger.ms": 5})
    failures = []
    for key, value, headers in records:
        producer.produce(topic, key=key, value=value, headers=headers,
                         on_delivery=lambda err, _msg: err and failures.append(err))
    assert producer.flush(30) == 0, "records still unacknowledged"
    assert not failures, failures


def consumer(broker, group):
    return Consumer({"bootstrap.servers": broker.kafka, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000})


def read(c, count):
    """Polls until `count` records arrived (bounded at 30 s)."""
    got = []
    deadline = time.time() + 30
    while len(got) < count and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m)
    assert len(got) == count, f"read {len(got)} of {count} records"
    return got


class Suite:
    def __init__(self, broker, page, shots):
        self.broker, self.page, self.shots = broker, page, shots
        self.failed = 0

    def shot(self, name):
        path = os.path.join(self.shots, name + ".png")
        self.page.screenshot(path=path, full_page=True)
        print(f"  screenshot: {path}")

    def run(self, name, test):
        try:
            test()
            print(f"PASS {name}")
        except Exception as e:  # every failure is reported, then the next test runs
            self.failed += 1
            print(f"FAIL {name}: {e}")
            traceback.print_exc(limit=3)
            try:
                self.shot("failed-" + name)
            except Exception:
                pass

    def goto(self, hash_path):
        self.page.goto(self.broker.http + "/#" + hash_path)

    # -- the tests --------------------------------------------------------------------

    def overview_shows_the_cluster_and_live_throughput(self):
        cluster = self.broker.api("/cluster")
        self.goto("/")
        expect(self.page.get_by_test_id("cluster-id")).to_have_text(cluster["cluster_id"])
        expect(self.page.get_by_test_id("version")).to_contain_text("Gregor")
        # The first sample is drawn; records produced now show as a rate at the next one.
        expect(self.page.get_by_test_id("rate-messages_in")).not_to_have_text("–")
        for _ in range(5):
            produce(self.broker, "throughput", [(None, b"x" * 100, None)] * 100)
            time.sleep(0.8)
        expect(self.page.get_by_test_id("rate-messages_in")).to_have_text(
            re.compile(r"^[1-9][\d,]*/s$"), timeout=TIMEOUT_MS)
        self.shot("overview")
        self.page.reload()
        expect(self.page.get_by_test_id("topic-count")).to_have_text("1")
        expect(self.page.get_by_test_id("message-count")).to_have_text("500")

    def a_topic_is_created_and_its_config_edited_in_the_browser(self):
        self.goto("/topics")
        self.page.get_by_test_id("new-topic-name").fill("orders")
        self.page.get_by_test_id("new-topic-partitions").fill("3")
        self.page.get_by_test_id("new-topic-configs").fill("retention.ms=3600000")
        self.page.get_by_role("button", name="Create topic").click()
        expect(self.page.get_by_test_id("topic-name")).to_have_text("orders")
        expect(self.page.get_by_test_id("partitions").locator("tbody tr")).to_have_count(3)
        row = self.page.locator('[data-config-row="retention.ms"]')
        expect(row.locator("input")).to_have_value("3600000")
        expect(row).to_contain_text("DYNAMIC_TOPIC_CONFIG")
        row.locator("input").fill("7200000")
        self.page.get_by_test_id("save-retention.ms").click()
        expect(self.page.locator('[data-config-row="retention.ms"] input')).to_have_value("7200000")
        configs = {c["name"]: c["value"] for c in self.broker.api("/topics/orders")["configs"]}
        assert configs["retention.ms"] == "7200000", configs["retention.ms"]
        self.shot("topic")
        self.goto("/topics")
        expect(self.page.locator('[data-topic="orders"]')).to_contain_text("orders")
        self.shot("topics")

    def a_produced_message_appears_in_the_browser(self):
        produce(self.broker, "orders", [
            (b"user-%d" % i, json.dumps({"user": i, "total": i * 10}).encode(), [("source", b"test")])
            for i in range(40)])
        # Keyed records land by murmur2: ask the broker which partition has user-7.
        target = b"user-7"
        partition = next(p for p in range(3)
                         for m in self.broker.api(f"/topics/orders/messages?partition={p}&from=beginning&limit=500")["messages"]
                         if base64.b64decode(m["key"]) == target)
        self.goto(f"/topics/orders/messages?partition={partition}")
        self.page.get_by_test_id("render").select_option("json")
        self.page.get_by_test_id("key-filter").fill("user-7")
        self.page.get_by_test_id("from").select_option("beginning")
        self.page.get_by_test_id("load").click()
        rows = self.page.get_by_test_id("messages").locator("tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("user-7")
        rows.first.click()
        expect(self.page.get_by_test_id("detail-value")).to_have_text(json.dumps({"user": 7, "total": 70}, indent=2))
        expect(self.page.get_by_test_id("detail-headers")).to_have_text("source: test")
        self.shot("messages")
        self.page.get_by_test_id("render").select_option("hex")
        rows.first.click()
        expect(self.page.get_by_test_id("detail-key")).to_have_text("000000  75 73 65 72 2d 37")

    def a_message_produced_in_the_browser_reaches_a_kafka_client(self):
        self.goto("/topics/orders/messages")
        self.page.get_by_test_id("render").select_option("utf8")
        self.page.get_by_test_id("produce-partition").select_option("2")
        self.page.get_by_test_id("produce-key").fill("from-browser")
        self.page.get_by_test_id("produce-value").fill("hello from the browser")
        self.page.get_by_test_id("produce-headers").fill("via=console")
        self.page.get_by_test_id("produce-send").click()
        expect(self.page.get_by_test_id("notice")).to_contain_text("Written to partition 2 at offset")
        offset = int(re.search(r"offset (\d+)", self.page.get_by_test_id("notice").inner_text()).group(1))
        expect(self.page.get_by_test_id("messages")).to_contain_text("hello from the browser")
        c = Consumer({"bootstrap.servers": self.broker.kafka, "group.id": "reader", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition("orders", 2, offset)])
            m = read(c, 1)[0]
            assert (m.key(), m.value(), m.headers()) == (b"from-browser", b"hello from the browser", [("via", b"console")]), m
        finally:
            c.close()

    def lag_goes_to_zero_after_a_consumer_commits(self):
        self.broker.api("/topics", "POST", {"name": "payments", "partitions": 1})
        produce(self.broker, "payments", [(None, b"p%d" % i, None) for i in range(10)])
        c = consumer(self.broker, "billing")
        c.subscribe(["payments"])
        records = read(c, 10)
        c.commit(offsets=[TopicPartition("payments", 0, records[3].offset() + 1)], asynchronous=False)
        self.goto("/groups/billing")
        expect(self.page.get_by_test_id("total-lag")).to_have_text("6", timeout=TIMEOUT_MS)
        expect(self.page.get_by_test_id("members")).to_contain_text("rdkafka")
        self.shot("group")
        # The consumer commits the rest: the page, refreshing itself, shows no lag.
        c.commit(offsets=[TopicPartition("payments", 0, records[-1].offset() + 1)], asynchronous=False)
        expect(self.page.get_by_test_id("total-lag")).to_have_text("0", timeout=TIMEOUT_MS)
        c.close()
        expect(self.page.get_by_test_id("group-state")).to_have_text(re.compile("Empty", re.I), timeout=TIMEOUT_MS)
        self.goto("/groups")
        expect(self.page.locator('[data-group="billing"]')).to_contain_text("billing")
        self.shot("groups")

    def offsets_are_reset_and_the_group_deleted_in_the_browser(self):
        self.goto("/groups/billing")
        self.page.get_by_test_id("reset-to").select_option("offset")
        self.page.get_by_test_id("reset-value").fill("2")
        self.page.get_by_test_id("reset-send").click()
        expect(self.page.get_by_test_id("notice")).to_contain_text("payments-0 → 2")
        expect(self.page.get_by_test_id("total-lag")).to_have_text("8")
        # A consumer of the group now starts where the console put it.
        c = consumer(self.broker, "billing")
        c.subscribe(["payments"])
        assert read(c, 1)[0].offset() == 2
        c.close()
        self.goto("/groups/billing")
        self.page.once("dialog", lambda d: d.accept())
        self.page.get_by_test_id("delete-group").click()
        expect(self.page.get_by_test_id("app")).not_to_contain_text("billing", timeout=TIMEOUT_MS)

    def a_topic_is_deleted_in_the_browser(self):
        self.goto("/topics/payments")
        self.page.once("dialog", lambda d: d.accept())
        self.page.get_by_test_id("delete-topic").click()
        expect(self.page.get_by_test_id("topics")).not_to_contain_text("payments")
        assert "payments" not in [t["name"] for t in self.broker.api("/topics")]

    def api_errors_are_shown_not_swallowed(self):
        self.goto("/topics")
        self.page.get_by_test_id("new-topic-name").fill("orders")
        self.page.get_by_role("button", name="Create topic").click()
        expect(self.page.get_by_test_id("error")).to_contain_text("TOPIC_ALREADY_EXISTS")


def main():
    binary, shots = sys.argv[1], sys.argv[2]
    os.makedirs(shots, exist_ok=True)
    broker = Gregor(binary)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            suite = Suite(broker, page, shots)
            for name in ["overview_shows_the_cluster_and_live_throughput",
                         "a_topic_is_created_and_its_config_edited_in_the_browser",
                         "a_produced_message_appears_in_the_browser",
                         "a_message_produced_in_the_browser_reaches_a_kafka_client",
                         "lag_goes_to_zero_after_a_consumer_commits",
                         "offsets_are_reset_and_the_group_deleted_in_the_browser",
                         "a_topic_is_deleted_in_the_browser",
                         "api_errors_are_shown_not_swallowed"]:
                suite.run(name, getattr(suite, name))
            browser.close()
    finally:
        broker.stop()
    print(f"{8 - suite.failed} passed, {suite.failed} failed")
    sys.exit(1 if suite.failed else 0)


if __name__ == "__main__":
    main()
