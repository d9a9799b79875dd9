from asr.agreement import LocalAgreement


def test_commits_only_what_two_hypotheses_agree_on():
    la = LocalAgreement()
    assert la.update("the quick") == ([], ["the", "quick"])
    newly, tail = la.update("the quick brown")
    assert newly == ["the", "quick"] and tail == ["brown"]
    # The committed prefix is forced, so later hypotheses start with it.
    newly, tail = la.update("the quick brown fox")
    assert newly == ["brown"] and tail == ["fox"]
    assert la.committed_text == "the quick brown"


def test_disagreement_commits_nothing_and_case_punctuation_are_ignored():
    la = LocalAgreement()
    la.update("Meet on Friday,")
    newly, tail = la.update("meet on friday.")
    assert newly == ["meet", "on", "friday."]
    newly, tail = la.update("meet on friday. Bring the deck")
    assert newly == [] and tail == ["Bring", "the", "deck"]
    newly, tail = la.update("meet on friday. Bring a deck")
    assert newly == ["Bring"] and tail == ["a", "deck"]


def test_reset():
    la = LocalAgreement()
    la.update("a b")
    la.update("a b c")
    la.reset()
    assert la.committed == [] and la.update("x") == ([], ["x"])
