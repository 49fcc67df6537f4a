"""The digits data and tokenizer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specplug.testing import examples
from specplug_image.digits import NUM_LEVELS, DigitsTokenizer, load_split

tok = DigitsTokenizer()


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.integers(0, NUM_LEVELS - 1), min_size=64, max_size=64), st.integers(0, 9))
def test_tokenizer_round_trips(pixels, label):
    image = np.asarray(pixels).reshape(8, 8)
    ids = tok.encode(image, label)
    assert len(ids) == 65 and ids[0] == tok.class_token(label)
    back, back_label = tok.decode(ids)
    assert back_label == label
    assert np.array_equal(back, image)
    assert np.array_equal(tok.decode(ids[1:])[0], image)  # the 64 generated tokens alone


def test_tokenizer_round_trips_every_real_image():
    split = load_split()
    seqs = split.sequences("test")
    for seq, image, label in zip(seqs, split.test_images, split.test_labels):
        back, back_label = tok.decode(seq)
        assert back_label == label and np.array_equal(back, image)


def test_split_is_fixed_stratified_and_held_out():
    split = load_split()
    assert len(split.train_images) + len(split.test_images) == 1797
    assert len(split.test_images) == 360
    assert set(np.bincount(split.test_labels)) <= {35, 36, 37}  # stratified: ~36 per class
    train = {img.tobytes() for img in split.train_images}
    assert sum(img.tobytes() in train for img in split.test_images) < 5  # (a few digits are pixel-identical)
    assert np.array_equal(load_split().test_labels, split.test_labels)  # same split every time


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: tok.prompt(10), "digit class must be in 0..9"),
        (lambda: tok.encode(np.full((8, 8), 17), 3), "grey levels 0..16"),
        (lambda: tok.encode(np.zeros(63), 3), "64 pixels"),
        (lambda: tok.decode([tok.class_token(1)] + [20] * 64), "not grey levels"),
        (lambda: tok.decode([0] * 10), "expected 64 pixel tokens"),
    ],
)
def test_bad_images_and_tokens_are_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_generated_class_tokens_are_counted_and_drawn_as_background():
    image, invalid = tok.decode_generated([5] * 62 + [tok.class_token(2), 30])
    assert invalid == 2 and image[7, 6] == 0 and image[7, 7] == 0 and image[0, 0] == 5
