"""Wall time of each shipped diagnosis procedure against real parts (Prometheus scraping a real etcd
cluster and the apiserver stand-in, /readyz stubs). Run: .venv/bin/python benchmarks/bench_diagnosis.py"""
import statistics, time, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.diagnosis.test_real_components import access, run, wait_for, ROBOT
from tests.support.apiserver import ApiServerStandIn
from tests.support.components import EtcdCluster, Prometheus, StubApiserver

with ApiServerStandIn() as standin, EtcdCluster(3) as etcd:
    groups = {"main": [StubApiserver("m1").start(), StubApiserver("m2").start()], "bypass": [StubApiserver("b1").start()]}
    with Prometheus({"etcd": etcd.metrics_targets, "apiserver": [standin.url.split("://")[1]]}) as prom:
        wait_for(lambda: len(prom.query("up == 1")) == 4, "scrape")
        standin.flood(ROBOT)
        wait_for(lambda: prom.query("sum(rate(apiserver_flowcontrol_rejected_requests_total[1m])) > 1"), "rate")
        acc = access(standin, groups, etcd, prom.url)
        for name in ("apiserver-overload", "apiserver-unavailable", "etcd-health", "control-plane-triage"):
            times = []
            for _ in range(10):
                t = time.perf_counter(); o = run(acc, name); times.append(time.perf_counter() - t)
            times.sort()
            print(f"{name:24s} -> {o.conclusion.id:16s} median {statistics.median(times)*1000:6.1f} ms  max {times[-1]*1000:6.1f} ms")
    for g in groups.values():
        for s in g: s.close()
