"""data/privacy: masking of names, phones and sensitive key-group tags."""
import pandas as pd

from data.catalogue import key_groups
from data.privacy import (mask_grids, mask_households, mask_layers, mask_name, mask_names, mask_phone,
                          mask_phones, sensitive_tag_keys)


def test_mask_name():
    assert mask_name("张三") == "张**"
    assert mask_name("欧阳修远") == "欧**"  # the length is not revealed
    assert mask_name("  李四 ") == "李**"
    assert mask_name(None) is None and mask_name("") == ""


def test_mask_phone():
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_phone("8613812341234") == "138****1234"
    assert mask_phone("62781234") == "****1234"
    assert mask_phone("110") == "****"
    assert mask_phone(None) is None
    assert mask_phone(13812341234) == "138****1234"


def test_vectorised_forms_keep_blanks_and_index():
    s = pd.Series(["王五", None, "", "赵六"], index=[10, 11, 12, 13], dtype=object)
    out = mask_names(s)
    assert out.tolist()[0] == "王**" and out.iloc[1] is None and out.iloc[2] == "" and out.index.tolist() == [10, 11, 12, 13]
    p = mask_phones(pd.Series(["13912345678", None]))
    assert p.iloc[0] == "139****5678" and p.iloc[1] is None


def test_sensitive_keys_come_from_the_catalogue():
    keys = sensitive_tag_keys()
    assert keys == {k.key for k in key_groups() if k.sensitive}
    assert {"released_prisoner", "low_income", "disabled"} <= keys and "empty_nest_elderly" not in keys


def test_mask_households_default_and_allowed():
    df = pd.DataFrame({"id": ["h1", "h2"], "head_name": ["张三丰", "李四"], "phone": ["13700001111", None],
                       "tags": [["released_prisoner", "disabled", "veteran"], []]})
    masked = mask_households(df)
    assert masked["head_name"].tolist() == ["张**", "李**"]
    assert masked["phone"].iloc[0] == "137****1111"
    assert masked["tags"].tolist() == [["veteran"], []]  # 残疾人 is health data: sensitive
    assert df["head_name"].iloc[0] == "张三丰"  # input untouched
    full = mask_households(df, allow_personal=True)
    assert full["head_name"].tolist() == ["张三丰", "李四"] and full["tags"].iloc[0] == ["released_prisoner", "disabled", "veteran"]


def test_mask_grids_and_layers():
    g = pd.DataFrame({"id": ["g"], "head_name": ["王建国"], "head_phone": ["13812345678"]})
    assert mask_grids(g)["head_name"].iloc[0] == "王**"
    assert mask_grids(g)["head_phone"].iloc[0] == "138****5678"
    out = mask_layers({"grids": g, "households": pd.DataFrame({"head_name": ["a"], "phone": ["1"], "tags": [[]]})})
    assert out["grids"]["head_name"].iloc[0] == "王**" and out["households"]["head_name"].iloc[0] == "a**"


def test_masked_placeholders_are_recognised():
    from data.privacy import is_masked, mask_name, mask_phone
    for v in ("梁**", "199****9531", "***", "****1234", "张＊＊", "●●●", mask_name("梁静艳"), mask_phone("13812341234")):
        assert is_masked(v), v
    for v in ("梁静艳", "19900019531", "010-6278-1234", "3×4号楼", None, "", "x"):
        assert not is_masked(v), v
