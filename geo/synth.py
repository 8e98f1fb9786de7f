"""Synthetic households, generated deterministically from buildings. Never real people.

Every generated row has synthetic=True; names and phones are drawn from fixed lists and a
reserved-looking number range so they cannot be mistaken for real ones.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红建国志文斌宇浩凯鹏辉鑫欣怡晨阳佳琳雪梅慧婷")
PERSONS_P = np.array([0.22, 0.34, 0.26, 0.12, 0.06])  # 1..5 persons
OCCUPANCY = 0.93


def generate_households(buildings: pd.DataFrame, capacity: np.ndarray, key_groups, seed: int = 20261123,
                        households_per_floor_unit: np.ndarray | None = None) -> pd.DataFrame:
    """One row per occupied dwelling: id, building_id, unit, room, persons, tags, head_name, phone, synthetic.

    buildings: id, floors, units (aligned with capacity). key_groups: objects with .key and
    .synthetic_share (data/catalogues/key_groups.csv). Deterministic for a given seed and input order.
    """
    rng = np.random.default_rng(seed)
    cap = np.asarray(capacity, dtype=int)
    floors = buildings["floors"].to_numpy(dtype=int)
    units = np.maximum(buildings["units"].to_numpy(dtype=int), 1)
    per = np.where(cap > 0, np.maximum(cap // np.maximum(floors * units, 1), 1), 0)
    bidx = np.repeat(np.arange(len(cap)), cap)
    # position k within the building -> (unit, floor, door)
    start = np.concatenate([[0], np.cumsum(cap)[:-1]])
    k = np.arange(len(bidx)) - start[bidx]
    door = k % per[bidx] + 1
    floor = (k // per[bidx]) % floors[bidx] + 1
    unit = k // (per[bidx] * floors[bidx]) + 1
    occupied = rng.random(len(bidx)) < OCCUPANCY
    bidx, door, floor, unit = bidx[occupied], door[occupied], floor[occupied], unit[occupied]
    n = len(bidx)
    persons = rng.choice(np.arange(1, 6), size=n, p=PERSONS_P)
    tag_cols = {}
    for g in key_groups:
        tag_cols[g.key] = rng.random(n) < g.synthetic_share
    # consistency: elderly living alone are one-person households; empty-nest at most two
    if "living_alone_elderly" in tag_cols:
        persons = np.where(tag_cols["living_alone_elderly"], 1, persons)
        if "empty_nest_elderly" in tag_cols:
            tag_cols["empty_nest_elderly"] &= ~tag_cols["living_alone_elderly"]
    if "empty_nest_elderly" in tag_cols:
        persons = np.where(tag_cols["empty_nest_elderly"], np.minimum(persons, 2), persons)
    keys = list(tag_cols)
    mat = np.column_stack([tag_cols[k] for k in keys]) if keys else np.zeros((n, 0), bool)
    key_arr = np.array(keys, dtype=object)
    tags = [list(key_arr[row]) for row in mat]
    surname = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN) + 12, n)  # some single-character given names
    given = np.array(GIVEN + [""] * 12, dtype=object)
    names = (np.array(SURNAMES, dtype=object)[surname] + np.array(GIVEN, dtype=object)[g1] + given[g2])
    phones = np.char.add("1990000", np.char.zfill(rng.integers(0, 10_000, n).astype(str), 4))
    bid = buildings["id"].to_numpy(dtype=object)[bidx]
    room = np.char.add(floor.astype(str), np.char.zfill(door.astype(str), 2))
    ids = pd.Series(bid).str.cat([pd.Series(unit.astype(str)), pd.Series(room)], sep="-")
    return pd.DataFrame({
        "id": ids.to_numpy(), "building_id": bid, "unit": unit, "room": room, "persons": persons,
        "tags": tags, "head_name": names, "phone": phones.astype(object), "synthetic": True,
    })
