"""Readable random run names ("bold-heron-417"), as MLflow gives runs without a name."""

from __future__ import annotations

import random

_ADJECTIVES = (
    "able amber ample bold brave bright brisk calm clever crisp curious daring deft eager "
    "fancy fast fierce gentle glad grand happy hardy honest humble keen kind lively loyal lucid "
    "merry mighty nimble noble placid polite proud quick quiet rapid rare ready regal robust "
    "rustic shy silent sleek smart snappy solid steady stoic sunny swift tender tidy upbeat "
    "valiant vivid warm wise witty zesty"
).split()
_NOUNS = (
    "ant bat bear bee bison boar carp cat colt crab crane crow deer dove duck eel elk falcon "
    "finch fox frog gnat goat goose hare hawk heron hound ibex jay kite koala lark lemur lion "
    "lynx mink mole moose moth mule newt otter owl panda pike puma quail ram raven robin "
    "seal shark shrew sloth snail squid stork swan tapir toad trout vole wasp whale wolf wren "
    "yak zebra"
).split()

_random = random.SystemRandom()


def random_run_name() -> str:
    return f"{_random.choice(_ADJECTIVES)}-{_random.choice(_NOUNS)}-{_random.randint(0, 999)}"
