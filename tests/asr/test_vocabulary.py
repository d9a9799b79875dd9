"""The vocabulary snapper: near-miss spellings of listed terms become the terms; ordinary
text (listed terms absent) is never changed; and the session wrapper applies it to events."""

from __future__ import annotations

import numpy as np
import pytest

from asr.base import Final, Partial, Session
from asr.vocabulary import Snapper, common_words, snapping, sound_key, with_context

TERMS = ("Anya", "Siobhan", "Nguyen", "Okonkwo", "Priya", "Joaquin", "Kubernetes", "Postgres", "Grafana",
         "Terraform", "Kafka", "Datadog", "Jenkins", "Redis", "Slack", "Q3 OKRs")


@pytest.fixture(scope="module")
def snap() -> Snapper:
    return Snapper(TERMS)


@pytest.mark.parametrize("heard, meant", [
    ("Deploy the Cuban eat ease cluster.", "Deploy the Kubernetes cluster."),
    ("The post gres migration is blocked.", "The Postgres migration is blocked."),
    ("Ania said so, didn't she?", "Anya said so, didn't she?"),
    ("Ask Okonko about the Grafanna dashboards, please.", "Ask Okonkwo about the Grafana dashboards, please."),
    ("We use data dog for alerts.", "We use Datadog for alerts."),
    ("Pria will present (on Thursday).", "Priya will present (on Thursday)."),
    ("the terra form plan", "the Terraform plan"),
    ("Joaquim restarted jenkins.", "Joaquin restarted Jenkins."),
])
def test_near_misses_snap_to_the_term_keeping_what_is_around(snap, heard, meant):
    assert snap(heard) == meant


@pytest.mark.parametrize("text", [
    "Do you have any other questions before we wrap up?",
    "Let's grab a coffee after the meeting and talk about the budget.",
    "Half the team is away, in a way.",
    "Please post the notes in the channel when you are done.",
    "The new office has a terrace with a view of the river.",
    "I think the cube on the chart is the wrong color.",
    "The data shows the dog barked all through my call.",
    "Our priority is the release, and the rest can wait.",
    "Cut some slack for the new joiners, they are learning.",
    "He read the news at noon and then went to the gym.",
    "Priority one: the post office, then the grocery store.",
    "And you will see the red is brighter than the orange.",
])
def test_ordinary_sentences_are_never_changed(snap, text):
    assert snap(text) == text


def test_a_lone_common_word_is_never_taken_for_a_name():
    # "any" sounds exactly like "Anya" to the sound key; it is an ordinary word, so it stays.
    assert sound_key("any") == sound_key("Anya")
    assert "any" in common_words() and "coffee" in common_words() and "anya" not in common_words()
    assert Snapper(["Anya"])("Any news?") == "Any news?"


def test_punctuation_stops_a_span(snap):
    assert snap("Post. Gres.") == "Post. Gres."


def test_a_term_already_right_is_left_alone_and_no_terms_change_nothing(snap):
    text = "Siobhan moved Kafka to Kubernetes; Q3 OKRs are next."
    assert snap(text) == text
    assert Snapper([])("Cuban eat ease") == "Cuban eat ease"


def test_with_context_joins_the_users_text_and_the_terms():
    assert with_context("Weekly sync.", ("Anya", "Kafka")) == "Weekly sync. Anya, Kafka."
    assert with_context("", ()) == ""


class _Scripted(Session):
    def __init__(self, events):
        super().__init__()
        self.events, self.fed = events, []

    def feed_audio(self, pcm):
        self.fed.append(len(pcm))
        super().feed_audio(pcm)

    @property
    def done_s(self):
        return 1.5

    @property
    def idle(self):
        return False

    def step(self):
        return [self.events.pop(0)] if self.events else []

    def finish(self):
        out, self.events = self.events, []
        return out


def test_the_session_wrapper_snaps_finals_and_partials_and_delegates_the_rest():
    inner = _Scripted([Partial("the post gres", 0.0, 1.0), Final("The post gres migration.", 0.0, 2.0, flags=("x",)),
                       Final("Cuban eat ease", 2.0, 3.0)])
    s = snapping(inner, ("Postgres", "Kubernetes"))
    s.feed_audio(np.zeros(1600, np.float32))
    assert inner.fed == [1600] and s.fed_s == pytest.approx(0.1) and s.done_s == 1.5 and not s.idle
    assert s.step() == [Partial("the Postgres", 0.0, 1.0)]
    assert s.step() == [Final("The Postgres migration.", 0.0, 2.0, flags=("x",))]
    assert s.finish() == [Final("Kubernetes", 2.0, 3.0)]
    assert snapping(inner, ()) is inner
