import pytest

from par_demo.classes import ClassError, emoji_classes, imagenet_classes, numbered_classes


def test_imagenet_names_are_in_class_index_order():
    names = imagenet_classes()
    assert len(names) == 1000
    assert names.names[0] == "tench" and names.names[207] == "golden retriever"
    assert names.names[999] == "toilet tissue"


@pytest.mark.parametrize("query,index", [(207, 207), ("207", 207), ("golden retriever", 207),
                                         ("Golden Retriever", 207), ("panda bear", 388),
                                         ("388: giant panda", 388), ("388: Panda", 388),
                                         ("388:", 388), ("0207", 207), ("tabby cat", 281)])
def test_classes_resolve_from_index_or_name(query, index):
    assert imagenet_classes().resolve(query) == index


@pytest.mark.parametrize("query,message", [(1000, "out of range"), ("-3", "out of range"),
                                           ("unicorn", "no class is called"),
                                           ("crane", "several classes: 134: crane, 517: crane")])
def test_unknown_or_ambiguous_classes_explain_themselves(query, message):
    with pytest.raises(ClassError, match=message):
        imagenet_classes().resolve(query)


def test_emoji_and_numbered_tables():
    emoji = emoji_classes()
    assert emoji.resolve("mammal") == emoji.names.index("mammal")
    assert numbered_classes(3).names == ("class 0", "class 1", "class 2")


@pytest.mark.parametrize("query,character", [
    ("²", "superscript two"), ("⁴", "superscript four"), ("①", "circled digit one"),
    ("'²: heart'", "superscript two"), ("²: heart", "superscript two"),
    ("٤", "arabic-indic digit four"), ("۴", "extended arabic-indic digit four"),
    ("४", "devanagari digit four"), ("𝟒", "mathematical bold digit four"),
    ("４", "fullwidth digit four"), ("½", "vulgar fraction one half"),
    ("2²", "superscript two")])
def test_an_index_takes_ascii_digits_only(query, character):
    with pytest.raises(ClassError, match=rf"digits 0-9 only, not '.+' \({character}\)$"):
        emoji_classes().resolve(query)


@pytest.mark.parametrize("query,message", [
    ("4: mammal", r"'4: mammal' disagrees with itself: class 4 is 'heart', but 'mammal' is "
                  r"class 10: mammal; give the index or the name"),
    ("4: unicorn", r"class 4 is 'heart', but no class is called 'unicorn'"),
    ("4: face", r"class 4 is 'heart', but 'face' names other classes \(0: smiling face, "),
    ("99: heart", r"class index 99 is out of range 0..31")])
def test_a_label_whose_index_and_name_disagree_is_refused_naming_both(query, message):
    with pytest.raises(ClassError, match=message):
        emoji_classes().resolve(query)
