"""The misses of issue 25's hostile run, each rebuilt: query strings in the access log, a normaliser whose spread
makes every request fail, a pickle PEFT folder, a symlinked artifact file, a relative encoder_path."""

import io
import json
import logging
import logging.config

import pytest

from preforch.errors import PreforchError


def test_access_log_never_holds_a_query_string():
    from preforch.serve.server import log_config

    config = log_config("info")
    config["handlers"]["access"]["stream"] = "ext://sys.stdout"
    logging.config.dictConfig(config)
    handler = logging.getLogger("uvicorn.access").handlers[0]
    stream = io.StringIO()
    handler.setStream(stream)
    # the args uvicorn's h11/httptools protocols log with: client, method, path with query, HTTP version, status
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST",
                                             "/v1/weights?api_key=SECRETKEY&prompt=my+text", "1.1", 200)
    line = stream.getvalue()
    assert "POST /v1/weights HTTP/1.1" in line and "200" in line
    assert "SECRETKEY" not in line and "my+text" not in line and "?" not in line


@pytest.mark.parametrize("stats,method", [({"mean": [0.0, 0.0], "std": [1e-310, 1.0]}, "zscore"),
                                          ({"min": [0.0, 0.0], "max": [5e-324, 1.0]}, "minmax")])
def test_a_normaliser_with_a_denormal_spread_is_refused_at_load(tmp_path, stats, method):
    from preforch.rewards.normalize import Normalizer

    path = tmp_path / "normalizer.json"
    path.write_text(json.dumps({"format_version": 1, "objectives": ["a", "b"], "method": method, "clip": None,
                                "stats": stats}))
    with pytest.raises(PreforchError, match="too small to divide by"):
        Normalizer.load(path)


def test_a_pickle_peft_folder_is_refused_in_one_line(tmp_path):
    from preforch.infer.generation import load_final_policy

    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(PreforchError, match=r"adapter_model.bin, a pickle checkpoint.*only as safetensors"):
        load_final_policy(tmp_path)


def test_an_artifact_file_linked_out_of_its_folder_is_refused_unread(tmp_path):
    from preforch.artifacts import read_object

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET TEXT")
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "config.json").symlink_to(secret)
    with pytest.raises(PreforchError, match="symlink to a file outside its folder") as info:
        read_object(folder / "config.json", "adapter config")
    assert "SECRET" not in str(info.value)
    (folder / "own.json").write_text("{}")
    (folder / "link.json").symlink_to(folder / "own.json")  # a link inside the folder is its own file
    assert read_object(folder / "link.json", "x") == {}


def test_a_relative_path_in_an_artifact_resolves_against_the_artifact(tmp_path, monkeypatch):
    from preforch.artifacts import artifact_relative

    folder = tmp_path / "adapter"
    (folder / "encoder").mkdir(parents=True)
    config = folder / "config.json"
    assert artifact_relative("encoder", config, "encoder_path") == str(folder / "encoder")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(PreforchError, match="relative and not inside the artifact's folder"):
        artifact_relative("elsewhere", config, "encoder_path")
    assert artifact_relative("org/hub-model", config, "encoder_path") == "org/hub-model"
