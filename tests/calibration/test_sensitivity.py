"""The pure parts of the PSNR-budget pass: ranking and the search for float layers."""

from __future__ import annotations

from sredge.calibration.sensitivity import LayerSensitivity, rank_layers, search_float_layers


def test_rank_most_sensitive_first_ties_in_graph_order():
    s = [LayerSensitivity("a", "Conv", 0.05), LayerSensitivity("b", "Conv", 0.3),
         LayerSensitivity("c", "Conv", 0.05), LayerSensitivity("d", "ConvTranspose", 0.2)]
    assert [x.node for x in rank_layers(s)] == ["b", "d", "a", "c"]


def test_search_stops_at_the_first_prefix_within_budget():
    cost = {"b": 0.3, "d": 0.2, "a": 0.05, "c": 0.05}
    calls = []

    def drop_of(kept):
        calls.append(kept)
        return sum(v for k, v in cost.items() if k not in kept)

    kept, drop, steps = search_float_layers(["b", "d", "a", "c"], drop_of, 0.1)
    assert kept == ("b", "d") and abs(drop - 0.1) < 1e-9
    assert calls == [("b",), ("b", "d")] and len(steps) == 2


def test_search_gives_up_at_the_limit():
    kept, drop, steps = search_float_layers(["x", "y", "z"], lambda kept: 1.0 - 0.1 * len(kept), 0.1, max_float=2)
    assert kept == ("x", "y") and abs(drop - 0.8) < 1e-9 and len(steps) == 2


def test_layer_labels_name_layers_as_a_user_knows_them():
    import onnx

    from sredge.calibration.sensitivity import candidate_layers, layer_labels
    from sredge.runtime.bundled import default_model

    model = onnx.load(str(default_model(2)))
    labels = layer_labels(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert labels[convs[0].name] == f"conv 1 of {len(convs)} (first conv, head)"  # the module's own name
    assert labels[convs[1].name] == f"conv 2 of {len(convs)} (body.0.conv)"
    assert labels[convs[-1].name] == f"conv {len(convs)} of {len(convs)} (upsampler, tail)"
    assert set(labels) == {name for name, _ in candidate_layers(model)}
    assert "residual add" in labels.values()
    assert not any(label.startswith("node_") for label in labels.values())
