import pytest

from par_demo.classes import ClassError, emoji_classes, imagenet_classes, numbered_classes


def test_imagenet_names_are_in_class_index_order():
    names = imagenet_classes()
    assert len(names) == 1000
    assert names.names[0] == "tench" and names.names[207] == "golden retriever"
    assert names.names[999] == "toilet tissue"


@pytest.mark.parametrize("query,index", [(207, 207), ("207", 207), ("golden retriever", 207),
                                         ("Golden Retriever", 207), ("panda bear", 388),
                                         ("388: giant panda", 388), ("tabby cat", 281)])
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
