"""Storage benchmark: insert rate through SessionStore.add_segment and search latency.

    python bench/storage.py [--meetings 1000] [--db PATH] [--seed 7]

Builds N one-hour meetings (~150 words/min, Zipf-distributed realistic words, 4-11 s
segments), one committed transaction per segment exactly as the recorder does, then
times 20 realistic segment searches (`search`, limit=20) and 20 searches as people type
them (`search_meetings`: every term somewhere in the meeting, the last word a prefix,
20 meetings with their best hits). Targets: insert >= 20,000 segments/s, search p95 <= 50 ms
for each.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Run as a script, bench/ is sys.path[0] and this very file is named storage.py:
# put the repository root first so `import storage` finds the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import SessionStore, open_db  # noqa: E402

# Ranked roughly by frequency in speech; a Zipf law over this order gives the
# familiar shape (a few words everywhere, a long tail of rare ones).
FUNCTION_WORDS = """
the I and to that you it a we of is so like know yeah just in this think be have do
what not they was but on for it's that's are with if can we're don't going about there
um uh right okay at one or all get me my would our your because then here he she
them which how when some really kind no yes out up more also an there's I'm let's
maybe mean well see go now from by these those make thing things got were
been could should need want will did does had as any other into over than very
lot much where who why still even actually sort good we'll you're I've they're can't
two three four five ten hundred first next last both each every few many most same
""".split()

NOUNS = """
budget timeline roadmap release deadline customer client revenue forecast quarter
meeting agenda team manager engineer designer product feature bug issue ticket
sprint backlog estimate priority scope risk dependency blocker update status report
review decision owner plan goal metric target launch beta version build test
deployment pipeline server database cache performance memory search index query
migration schema backup audit contract invoice payment refund discount sale
onboarding hire interview candidate offer salary bonus policy process workflow
document spec proposal draft slide deck presentation demo prototype mockup wireframe
survey user partner vendor supplier order shipment warehouse office conference
workshop offsite lunch calendar slot morning afternoon evening week month year
weekend holiday vacation number percent dollar euro thousand million billion
increase decrease churn conversion funnel lead account renewal upgrade subscription
license seat tier startup company board investor round runway cost expense margin
profit loss lawyer agreement clause signature approval question answer problem
solution idea option alternative tradeoff assumption concern chance opportunity
advantage downside upside impact effort people resource capacity contractor
endpoint service library framework platform region cluster container node instance
setting flag toggle rollout rollback hotfix patch incident outage alert monitor
dashboard log trace error exception crash timeout retry queue worker job batch
stream event message notification email chat call phone video screen recording
transcript note summary highlight comment thread channel page wiki link folder file
upload download export import chart graph table spreadsheet row column cell filter
label tag category segment cohort market competitor brand campaign website blog
newsletter design layout font color icon logo image translation escalation vendor
contract deal pitch quote requirement milestone phase stage step task project
initiative program portfolio strategy vision mission value culture manager lead
director executive founder customer stakeholder sponsor owner reviewer approver
feedback survey score rating complaint request question topic point detail example
case scenario story epic bug fix change commit branch repo merge conflict version
tool script query report export integration connector plugin extension module
component service client browser device laptop phone tablet network firewall proxy
certificate password token key secret permission role group admin access policy
quota limit threshold baseline benchmark experiment hypothesis result finding insight
trend pattern spike dip drop jump plateau peak average median total count share
""".split()

# Departments' own vocabulary: finance, people, operations, legal, engineering.
DOMAIN = """
accrual amortization forecast ledger reconciliation payroll headcount reimbursement
receipt procurement purchase requisition allocation variance projection valuation
equity dividend shareholder auditor controller treasurer accountant spreadsheet
recruiter recruiting referral promotion performance appraisal mentor mentee coach
manager intern apprentice leadership retreat handbook guideline compliance grievance
benefit pension insurance allowance stipend relocation visa contractor consultant
freelancer agency outsourcing logistics carrier freight customs tariff pallet
container forklift inventory stockout backorder fulfillment courier dispatch route
depot fleet maintenance inspection safety hazard permit regulation regulator lawsuit
liability indemnity warranty patent trademark copyright jurisdiction arbitration
settlement negotiation counterparty amendment addendum appendix exhibit schedule
architecture algorithm prototype compiler interpreter runtime kernel driver firmware
hardware sensor antenna bandwidth throughput latency jitter packet protocol gateway
router switch load balancer replica shard partition transaction snapshot checkpoint
heartbeat lease mutex deadlock regression coverage linter formatter dependency
vulnerability exploit breach phishing malware encryption signature handshake
analytics attribution impression click session bounce retention acquisition
persona journey touchpoint storyboard copywriter headline tagline slogan sponsor
booth webinar keynote panel moderator attendee registration venue catering badge
""".split()

# Small talk and everyday words: meetings are not all jargon.
EVERYDAY = """
weather rain sun snow coffee tea water breakfast dinner kitchen house home apartment
car train bus flight airport hotel city country street park school kid parent
family friend neighbor dog cat game movie show book song music band concert ticket
birthday party gift trip beach mountain lake garden bike run walk gym doctor dentist
appointment cold flu headache sleep night noon hour minute second moment minute
door window desk chair room floor wall light camera microphone headphone speaker
battery charger cable keyboard mouse monitor printer paper pen notebook whiteboard
marker sticky board story joke news article podcast episode season series chapter
lesson course class exam grade homework holiday present picture photo memory habit
""".split()

VERBS = """
agree disagree understand explain discuss decide confirm check follow circle align
sync prioritize scope ship fix debug refactor rewrite merge approve reject postpone
cancel move push pull schedule book invite join leave send share forward reply ask
tell talk speak hear listen read write start finish continue stop pause wait try
help need expect hope plan assume guess deliver own handle cover track measure
report flag escalate block unblock review test deploy release launch migrate
upgrade install configure monitor investigate reproduce document update clean
simplify estimate budget hire train support answer call email message pick choose
compare prefer suggest propose recommend mention raise note capture summarize
""".split()

ADJECTIVES = """
clear simple complex hard easy quick slow fast late early big small huge tiny
important urgent critical minor major final initial new old current previous main
basic advanced happy worried excited concerned confident unsure ready busy available
free expensive cheap stable flaky broken solid rough tight loose internal external
public private quarterly weekly daily monthly annual remote local global manual
automatic optional required blocked pending open closed done
""".split()

NAMES_AND_JARGON = """
Priya Marcus Elena Tomasz Aisha Kenji Sofia Diego Hannah Oluwaseun Mateo Ingrid
Rahul Chen Fatima Lukas Amara Noah Yuki Gabriel Zara Olga Dmitri Camille Ravi
Kubernetes Terraform Postgres Redis Kafka Grafana Datadog Jira Confluence Figma
Salesforce HubSpot Stripe Zendesk Snowflake Looker Slack Notion GitHub GitLab
OKR KPI ARR MRR NPS CSAT SOC2 GDPR HIPAA SSO OAuth SDK CI QA UX UI MVP POC
ETA EOD EOW Q1 Q2 Q3 Q4 FY25 FY26 v2 v3 staging prod canary webhook microservice
""".split()


def _plural(w: str) -> str:
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + ("es" if w.endswith(("s", "x", "ch", "sh")) else "s")


def _verb_forms(w: str) -> list[str]:
    if w.endswith("e"):
        return [w, w + "s", w + "d", w[:-1] + "ing"]
    if w.endswith("y") and w[-2] not in "aeiou":
        return [w, w[:-1] + "ies", w[:-1] + "ied", w + "ing"]
    return [w, _plural(w), w + "ed", w + "ing"]


def vocabulary() -> list[str]:
    out = [form for v in VERBS for form in _verb_forms(v)]
    out += [form for n in NOUNS + DOMAIN + EVERYDAY for form in (n, _plural(n))]
    return list(dict.fromkeys(out + ADJECTIVES))


@dataclass(frozen=True)
class TextModel:
    words: tuple[str, ...]
    cum_weights: tuple[float, ...]
    topical: tuple[str, ...]  # where each meeting draws its few topic words from

    @classmethod
    def build(cls, rng: random.Random) -> TextModel:
        content = vocabulary()
        rng.shuffle(content)
        jargon = NAMES_AND_JARGON[:]
        rng.shuffle(jargon)
        # Names and jargon land in the middle-to-tail of the ranking.
        tail = content[:400] + jargon + content[400:]
        words = list(dict.fromkeys(FUNCTION_WORDS + tail))
        weights = [1.0 / (rank + 2.7) ** 1.0 for rank in range(len(words))]
        topical = tuple(NOUNS + VERBS + NAMES_AND_JARGON)
        return cls(tuple(words), tuple(itertools.accumulate(weights)), topical)

    def topic(self, rng: random.Random) -> tuple[str, ...]:
        return tuple(rng.sample(self.topical, 30))

    def utterance(self, rng: random.Random, n_words: int, topic: tuple[str, ...] = ()) -> str:
        picked = rng.choices(self.words, cum_weights=self.cum_weights, k=n_words)
        if topic:
            # A meeting keeps coming back to its subject: about 1 word in 12.
            for i in range(n_words):
                if rng.random() < 0.08:
                    picked[i] = rng.choice(topic)
        sentences, i = [], 0
        while i < len(picked):
            n = rng.randint(5, 14)
            chunk = picked[i : i + n]
            i += n
            if len(chunk) > 6 and rng.random() < 0.3:
                chunk[rng.randint(2, len(chunk) - 3)] += ","
            chunk[0] = chunk[0][:1].upper() + chunk[0][1:]
            sentences.append(" ".join(chunk) + ("?" if rng.random() < 0.12 else "."))
        return " ".join(sentences)


def meeting(model: TextModel, rng: random.Random, seconds: float = 3600.0):
    """Yield (text, start_s, end_s) for one meeting at ~150 words per minute."""
    topic = model.topic(rng)
    t = 0.0
    while t < seconds:
        length = rng.uniform(4.0, 11.0)
        n_words = max(3, round(length * 2.5 * rng.uniform(0.8, 1.2)))
        yield model.utterance(rng, n_words, topic), t, t + length, n_words
        t += length + rng.uniform(0.0, 0.6)


QUERIES = [
    "budget",  # common topic word
    "deadline",
    "think",  # very common word: the worst case for ranking
    "Kubernetes",  # jargon
    "Oluwaseun",  # rare name
    "SOC2",
    "refund",
    "budget review",  # two words (implicit AND)
    "release timeline",
    '"the budget"',  # phrase
    '"customer churn"',
    "deploy*",  # prefix
    "migrat*",
    "budget AND deadline",
    "invoice OR refund",
    "rollout NOT rollback",
    "NEAR(budget deadline, 10)",
    "that's the ETA?",  # plain typing: not FTS5 syntax, searched as words
    "Priya Stripe webhook",
    "text:postgres",  # column filter
]


# The search box (search_meetings): what people type, as they type it.
MEETING_QUERIES = [
    "laun",  # as you type: a prefix
    "Oluw",
    "budget",
    "budget dead",  # meeting-level AND, the last word a prefix
    "budget deadline",
    "budget AND deadline",  # the README's example
    "release timeline ",  # a space: whole words
    "Kubernetes Postgres",
    "Priya Stripe webhook",  # three rare words, rarely in one segment
    '"the budget" forecast',
    "deadline -budget",  # leaving meetings out
    "refund NOT invoice",
    "invoice OR refund",
    "think",  # a very common word: broad, newest matches
    "budget think",  # one narrow term, one broad: the broad one is checked per meeting
    "migrat",
    "customer churn",
    "NEAR(budget deadline, 10)",  # FTS5 syntax, within one segment
    "that's the ETA?",
    "SOC2 audit",
]

# Not part of p95: what a person could type to make search slow, shown for honesty.
STRESS_QUERIES = ["the", "t*", "a* OR b* OR c* OR d*", "the " * 32]
MEETING_STRESS = ["th", "the", "-the", "the and to"]


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass(frozen=True)
class InsertResult:
    segments: int
    words: int
    seconds: float


def insert_live(store: SessionStore, model: TextModel, rng: random.Random, meetings: int) -> InsertResult:
    """Meetings through add_segment, one committed transaction per final, as the recorder does."""
    n_segments = n_words = 0
    seconds = 0.0
    chunk_segments, chunk_seconds = 0, 0.0
    for m in range(meetings):
        rows = list(meeting(model, rng))  # generated before the clock starts
        sid = store.create_session(f"Meeting {m + 1}", "bench", "none")
        t0 = time.perf_counter()
        for text, start, end, _ in rows:
            store.add_segment(sid, text, start, end)
        elapsed = time.perf_counter() - t0
        seconds += elapsed
        chunk_seconds += elapsed
        chunk_segments += len(rows)
        store.finish_session(sid, duration_s=3600.0)
        n_segments += len(rows)
        n_words += sum(r[3] for r in rows)
        if (m + 1) % 100 == 0:
            print(
                f"  {m + 1:>5} meetings {n_segments:>9,} segments: last 100 at "
                f"{chunk_segments / chunk_seconds:>7,.0f} seg/s (load {os.getloadavg()[0]:.2f})"
            )
            chunk_segments, chunk_seconds = 0, 0.0
    return InsertResult(n_segments, n_words, seconds)


def insert_batched(store: SessionStore, model: TextModel, rng: random.Random, meetings: int) -> InsertResult:
    """Whole meetings in one transaction each, via import_json (as an import would)."""
    n_segments = n_words = 0
    seconds = 0.0
    for m in range(meetings):
        rows = list(meeting(model, rng))
        data = {
            "session": {"title": f"Imported {m + 1}", "started_at": "2025-01-01T09:00:00Z"},
            "segments": [
                {"seq": i + 1, "start_s": s, "end_s": e, "text": t} for i, (t, s, e, _) in enumerate(rows)
            ],
        }
        t0 = time.perf_counter()
        store.import_json(data)
        seconds += time.perf_counter() - t0
        n_segments += len(rows)
        n_words += sum(r[3] for r in rows)
    return InsertResult(n_segments, n_words, seconds)


def time_queries(store: SessionStore, queries: list[str], repeat: int,
                 meetings: bool = False) -> list[tuple[str, list[float], int]]:
    """Per query: one warm-up, then `repeat` timed runs (ms) and the number of hits (meetings)."""
    search = store.search_meetings if meetings else store.search
    out = []
    for q in queries:
        search(q, limit=20)
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            hits = search(q, limit=20)
            runs.append((time.perf_counter() - t0) * 1000)
        out.append((q, runs, len(hits)))
    return out


def _row(label: str, value: str, target: str = "") -> None:
    print(f"{label:<44}{value:>18}  {target}")


Timed = list[tuple[str, list[float], int]]


def report(live: InsertResult, batched: InsertResult, timed: Timed, stress: Timed, by_meeting: Timed,
           meeting_stress: Timed, size: int, meetings: int) -> None:
    latencies = [ms for _, runs, _ in timed for ms in runs]
    meeting_latencies = [ms for _, runs, _ in by_meeting for ms in runs]
    print()
    _row("metric", "value", "target")
    print("-" * 72)
    _row("meetings / segments", f"{meetings:,} / {live.segments:,}")
    _row("words", f"{live.words:,}")
    _row("insert, 1 txn per segment (segments/s)", f"{live.segments / live.seconds:,.0f}", ">= 20,000")
    _row("insert, 1 txn per segment (words/s)", f"{live.words / live.seconds:,.0f}")
    if batched.segments:
        _row("insert, 1 txn per meeting (segments/s)", f"{batched.segments / batched.seconds:,.0f}")
    _row("search p50 (ms, limit=20)", f"{_percentile(latencies, 50):.2f}")
    _row("search p95 (ms, limit=20)", f"{_percentile(latencies, 95):.2f}", "<= 50")
    _row("search max (ms)", f"{max(latencies):.2f}")
    _row("meeting search p50 (ms, 20 meetings)", f"{_percentile(meeting_latencies, 50):.2f}")
    _row("meeting search p95 (ms, 20 meetings)", f"{_percentile(meeting_latencies, 95):.2f}", "<= 50")
    _row("meeting search max (ms)", f"{max(meeting_latencies):.2f}")
    _row("meeting p95 / segment p95", f"{_percentile(meeting_latencies, 95) / _percentile(latencies, 95):.2f}x")
    _row("database size (MB, incl. WAL)", f"{size / 1e6:.1f}")
    _queries("segment search: query", timed, stress)
    _queries("meeting search: query", by_meeting, meeting_stress, unit="mtgs")


def _queries(title: str, timed: Timed, stress: Timed, unit: str = "hits") -> None:
    print()
    print(f"{title:<34}{'p50 ms':>10}{unit:>6}")
    for q, runs, hits in timed:
        print(f"{q:<34}{statistics.median(runs):>10.2f}{hits:>6}")
    print(f"{'stress (not in p95)':<34}")
    for q, runs, hits in stress:
        label = q if len(q) < 30 else f"{q[:20].strip()}... ({len(q.split())} words)"
        print(f"  {label:<32}{statistics.median(runs):>10.2f}{hits:>6}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meetings", type=int, default=1000)
    ap.add_argument("--db", type=Path, default=None, help="database file (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batched", type=int, default=50, help="extra meetings imported in one transaction each")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each query")
    args = ap.parse_args(argv)

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="notetaker-bench-")
        args.db = Path(tmp.name) / "bench.db"
    if args.db.exists():
        print(f"{args.db} exists; pass a new path", file=sys.stderr)
        return 2

    rng = random.Random(args.seed)
    model = TextModel.build(rng)
    store = SessionStore(open_db(args.db))
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} (other processes share this machine)"
    )
    print(f"vocabulary: {len(model.words)} words; db: {args.db}")

    live = insert_live(store, model, rng, args.meetings)
    batched = insert_batched(store, model, rng, args.batched)
    timed = time_queries(store, QUERIES, args.repeat)
    stress = time_queries(store, STRESS_QUERIES, 3)
    by_meeting = time_queries(store, MEETING_QUERIES, args.repeat, meetings=True)
    meeting_stress = time_queries(store, MEETING_STRESS, 3, meetings=True)
    store.close()
    size = sum(f.stat().st_size for f in args.db.parent.glob(args.db.name + "*"))
    report(live, batched, timed, stress, by_meeting, meeting_stress, size, args.meetings)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
