from tests.support.wer import normalize, wer


def test_normalizer_folds_numbers_case_punctuation_and_abbreviations():
    assert normalize("Mr. Dashwood's 10 cards, 20% off — cold-hearted!") == \
        ["mister", "dashwood's", "ten", "cards", "twenty", "percent", "off", "cold", "hearted"]
    assert normalize("4. Queen of clubs") == ["four", "queen", "of", "clubs"]
    assert normalize("1,250") == ["one", "thousand", "two", "hundred", "fifty"]


def test_wer_counts_substitutions_insertions_deletions():
    assert wer(["a b c d"], ["a x c d e"]) == 0.5
    assert wer(["the cat"], ["The cat."]) == 0.0
    assert wer(["one two", "three"], ["one", "three four"]) == 2 / 3
