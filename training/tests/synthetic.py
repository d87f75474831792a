"""Tiny synthetic datasets for the tests, in the shared/data layout (tasks.json + <task>/{train,dev}.jsonl).

Templated sentences with invented fillers, generated from a seed: nothing here comes from the real
datasets (the project commits no copy of them). The tasks keep the real names, kinds and label sets
the tests rely on; tagging tasks list the BIO tags their lines use (a subset of the real ones,
checked by tests/test_shared.py). Write a copy to look at: `python3 -m tests.synthetic OUT_DIR`."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

TRAIN, DEV = 64, 32
Row = TypeVar("Row")

# ---------------------------------------------------------------------------- sst2
SUBJECTS = ["the film", "the plot", "the acting", "this movie", "the soundtrack", "the ending", "the script", "the cast"]
VERBS = ["was", "is", "felt", "seemed"]
ADVERBS = ["", "really", "quite", "so", "truly"]
POSITIVE = ["wonderful", "moving", "charming", "brilliant", "delightful", "clever", "warm", "gripping"]
NEGATIVE = ["dull", "tedious", "clumsy", "boring", "flat", "lifeless", "predictable", "messy"]


def _sst2(rng: random.Random, i: int) -> dict:
    label = i % 2
    words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(ADVERBS), rng.choice(POSITIVE if label else NEGATIVE)]
    return {"text": " ".join(w for w in words if w), "label": str(label)}


# ---------------------------------------------------------------------------- snips, snips_slots
# Intent templates: literal words and {slot} placeholders, filled with invented values.
SNIPS_TEMPLATES = {
    "AddToPlaylist": ["add {artist} to my {playlist} playlist", "put this {music_item} on {playlist}", "add the {music_item} by {artist} to {playlist}"],
    "BookRestaurant": ["book a table for {party_size_number} at {restaurant_name} {timeRange}", "reserve a {restaurant_type} in {city} for {party_size_number}"],
    "GetWeather": ["what is the weather in {city} {timeRange}", "will it rain in {city} {timeRange}", "is it cold in {city}"],
    "PlayMusic": ["play {artist} on {service}", "play some {genre} music", "listen to {artist} {timeRange}", "play the song {track}"],
    "RateBook": ["rate this {object_type} {rating_value} out of {best_rating}", "give {object_name} {rating_value} stars"],
    "SearchCreativeWork": ["find the {object_type} called {object_name}", "show me the {object_type} {object_name}"],
    "SearchScreeningEvent": ["when is {movie_name} playing {timeRange}", "find movie times at {location_name}", "is {movie_name} showing {timeRange}"],
}
SNIPS_SLOTS = {
    "artist": ["mara quill", "the velvet lanterns", "johnny copper", "ola brin", "dusty harbour"],
    "playlist": ["road trip", "sunday chill", "gym mix", "late night"],
    "music_item": ["song", "track", "album"],
    "party_size_number": ["two", "four", "6", "three"],
    "restaurant_name": ["the blue fig", "casa lumo", "pepper mill"],
    "restaurant_type": ["bistro", "diner", "tavern"],
    "timeRange": ["tomorrow", "this evening", "at 7 pm", "next friday", "tonight"],
    "city": ["oslo", "lima", "cape town", "san diego", "perth"],
    "service": ["spotify", "deezer", "google music"],
    "genre": ["jazz", "folk", "blues", "techno"],
    "track": ["paper moons", "slow river", "orange sky"],
    "object_type": ["book", "novel", "saga"],
    "rating_value": ["three", "4", "five", "1"],
    "best_rating": ["5", "six", "ten"],
    "object_name": ["the glass garden", "winter maps", "the last lighthouse"],
    "movie_name": ["iron meadow", "the quiet comet", "tin soldiers"],
    "location_name": ["starlight cinema", "the rex", "grand palace cinemas"],
}


def _snips_tagged(rng: random.Random, i: int) -> tuple[str, list[str], list[str]]:
    """An utterance of intent i % 7: its intent, words and BIO tags."""
    intent = sorted(SNIPS_TEMPLATES)[i % len(SNIPS_TEMPLATES)]
    return (intent, *_fill(rng.choice(SNIPS_TEMPLATES[intent]), SNIPS_SLOTS, rng))


def _fill(template: str, slots: dict[str, list[str]], rng: random.Random) -> tuple[list[str], list[str]]:
    words: list[str] = []
    tags: list[str] = []
    for part in template.split():
        if part.startswith("{"):
            slot = part[1:-1]
            value = rng.choice(slots[slot]).split()
            words += value
            tags += [f"B-{slot}"] + [f"I-{slot}"] * (len(value) - 1)
        else:
            words.append(part)
            tags.append("O")
    return words, tags


# ---------------------------------------------------------------------------- atis_slots
ATIS_TEMPLATES = [
    "show me flights from {fromloc.city_name} to {toloc.city_name} on {depart_date.day_name}",
    "i want a {round_trip} ticket from {fromloc.city_name} to {toloc.city_name}",
    "what is the {cost_relative} fare from {fromloc.city_name} to {toloc.city_name}",
    "list {airline_name} flights to {toloc.city_name} in the {depart_time.period_of_day}",
    "is there a {class_type} seat from {fromloc.city_name} to {toloc.city_name}",
    "fares under {fare_amount} from {fromloc.city_name} to {toloc.city_name}",
]
CITIES = ["boston", "denver", "new york", "salt lake city", "tampa", "seattle", "san jose"]
ATIS_SLOTS = {
    "fromloc.city_name": CITIES,
    "toloc.city_name": CITIES,
    "depart_date.day_name": ["monday", "tuesday", "friday", "sunday"],
    "round_trip": ["round trip", "one way"],
    "cost_relative": ["cheapest", "lowest"],
    "airline_name": ["delta", "united", "american airlines", "alaska airlines"],
    "depart_time.period_of_day": ["morning", "evening", "afternoon"],
    "class_type": ["first class", "coach", "business class"],
    "fare_amount": ["200 dollars", "500 dollars", "1000 dollars"],
}


def _atis(rng: random.Random, i: int) -> dict:
    while True:  # no flight from a city to itself
        words, tags = _fill(ATIS_TEMPLATES[i % len(ATIS_TEMPLATES)], ATIS_SLOTS, rng)
        places = [" ".join(w for w, t in zip(words, tags) if t.endswith(f"{end}loc.city_name")) for end in ("from", "to")]
        if places[0] != places[1]:
            return {"tokens": words, "tags": tags}


# ---------------------------------------------------------------------------- stsb
# A sentence is (subject, verb, object); each part has two wordings of one meaning. The score
# counts the shared meanings (subject 2, verb 1.5, object 1.5 points) plus a little noise.
STS_SUBJECTS = [("a man", "a guy"), ("a woman", "a lady"), ("a child", "a kid"), ("a dog", "a puppy"), ("the chef", "the cook")]
STS_VERBS = [("is playing", "plays"), ("is cutting", "slices"), ("is carrying", "holds"), ("is watching", "looks at")]
STS_OBJECTS = [("a guitar", "a guitar"), ("an onion", "an onion"), ("a ball", "a small ball"), ("the car", "the vehicle"), ("a box", "a crate")]


def _stsb(rng: random.Random, i: int) -> dict:
    parts = [STS_SUBJECTS, STS_VERBS, STS_OBJECTS]
    first = [rng.randrange(len(p)) for p in parts]
    keep = [((i >> bit) & 1) == 1 or rng.random() < 0.3 for bit in range(3)]  # every mix of shared parts
    second = [f if k else rng.choice([j for j in range(len(p)) if j != f]) for p, f, k in zip(parts, first, keep)]
    score = sum(w for w, k in zip((2.0, 1.5, 1.5), keep) if k) + rng.uniform(-0.3, 0.3)
    return {
        "text": " ".join(p[f][0] for p, f in zip(parts, first)) + ".",
        "text_pair": " ".join(p[s][rng.randrange(2)] for p, s in zip(parts, second)) + ".",
        "label": round(min(5.0, max(0.0, score)), 1),
    }


# ---------------------------------------------------------------------------- rte
NAMES = ["Tomas Verlaine", "Ada Okafor", "Lena Marsh", "Rui Santos", "Priya Nair", "Olek Brandt"]
JOBS = ["nurse", "baker", "pilot", "teacher", "lawyer", "carpenter"]
TOWNS = ["Oslo", "Lima", "Perth", "Tampa", "Cork", "Graz"]
THINGS = ["bicycle", "piano", "boat", "camera", "tent"]


def _rte(rng: random.Random, i: int) -> dict:
    name, job, town, thing = rng.choice(NAMES), rng.choice(JOBS), rng.choice(TOWNS), rng.choice(THINGS)
    other_job = rng.choice([j for j in JOBS if j != job])
    other_town = rng.choice([t for t in TOWNS if t != town])
    entails = i % 2 == 0
    if i % 4 < 2:
        text = f"{name}, who has worked as a {job} for ten years, moved to {town} last spring."
        pair = rng.choice([f"{name} lives in {town}.", f"{name} is a {job}."]) if entails else rng.choice([f"{name} lives in {other_town}.", f"{name} is a {other_job}."])
    else:
        text = f"On Monday {name} bought an old {thing} from a neighbour in {town}."
        pair = f"{name} bought a {thing}." if entails else rng.choice([f"{name} sold a {thing}.", f"{name} bought a {rng.choice([t for t in THINGS if t != thing])}."])
    return {"text": text, "text_pair": pair, "label": "entailment" if entails else "not_entailment"}


# ---------------------------------------------------------------------------- writing
def _bio_tags(lines: list[dict]) -> list[str]:
    """The tags the lines use, B- then I- sorted, "O" last (the order of the real tasks.json)."""
    return sorted({t for line in lines for t in line["tags"]} - {"O"}) + ["O"]


def _tagging_info(train: list[dict], dev: list[dict]) -> dict:
    seen = {t for line in train for t in line["tags"]}
    tags = _bio_tags(train + dev)
    return {"kind": "token tagging (BIO slots)", "tags": tags, "tags_unseen_in_train": [t for t in tags if t not in seen]}


def synthetic_lines(seed: int = 0) -> tuple[dict, dict[str, tuple[list[dict], list[dict]]]]:
    """(tasks.json content, {task: (train lines, dev lines)}); the same seed gives the same data."""

    def lines(task: str, make: Callable[[random.Random, int], Row]) -> tuple[list[Row], list[Row]]:
        rng = random.Random(f"{seed}-{task}")  # one stream per task: a task's data does not depend on another's
        rows = [make(rng, i) for i in range(TRAIN + DEV)]
        rng.shuffle(rows)
        return rows[:TRAIN], rows[TRAIN:]

    def snips_pair(rng: random.Random, i: int) -> tuple[dict, dict]:
        intent, words, tags = _snips_tagged(rng, i)
        return {"text": " ".join(words), "label": intent}, {"tokens": words, "tags": tags}

    # snips and snips_slots are the same utterances, labelled by intent and by slots (as the real ones).
    snips = lines("snips", snips_pair)
    splits = {
        "sst2": lines("sst2", _sst2),
        "snips": ([c for c, _ in snips[0]], [c for c, _ in snips[1]]),
        "stsb": lines("stsb", _stsb),
        "rte": lines("rte", _rte),
        "snips_slots": ([t for _, t in snips[0]], [t for _, t in snips[1]]),
        "atis_slots": lines("atis_slots", _atis),
    }
    tasks = {
        "sst2": {"kind": "single-sentence classification", "labels": ["0", "1"], "label_names": {"0": "negative", "1": "positive"}},
        "snips": {"kind": "single-sentence classification", "labels": sorted(SNIPS_TEMPLATES)},
        "stsb": {"kind": "regression", "label_range": [0.0, 5.0]},
        "rte": {"kind": "sentence-pair classification", "labels": ["entailment", "not_entailment"]},
        "snips_slots": _tagging_info(*splits["snips_slots"]),
        "atis_slots": _tagging_info(*splits["atis_slots"]),
    }
    return {"tasks": tasks}, splits


def write_synthetic_data(root: Path, seed: int = 0) -> Path:
    """Writes tasks.json and <task>/{train,dev}.jsonl under `root`; returns `root`."""
    manifest, splits = synthetic_lines(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    for task, (train, dev) in splits.items():
        (root / task).mkdir(exist_ok=True)
        for split, rows in (("train", train), ("dev", dev)):
            text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            (root / task / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return root


if __name__ == "__main__":
    print(write_synthetic_data(Path(sys.argv[1])))
