import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from losskernel import figure1, plotting

RECORD = {"rule": "figure1", "seed": 0}


def tiny_imagenet(rng, num_classes: int = 4, per_class: int = 6):
    """A fake ImageNet the size the pipeline tests use: a few classes of random-noise images."""
    labels = np.repeat(np.arange(num_classes), per_class)
    positions = labels / (num_classes - 1)
    same = (labels[:, None] == labels[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    kernel = 0.6 * same + (noise + noise.T) / 2
    np.fill_diagonal(kernel, 1.0)
    distance = 2.0 * np.abs(labels[:, None] - labels[None, :])
    groups = np.array(["dogs", "dogs", "", "vehicles"])[labels]
    coords = rng.normal(size=(len(labels), 3)) + labels[:, None]
    thumbnails = {i: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for i in range(len(labels))}
    captions = {i: f"class {c}" for i, c in enumerate(labels)}
    return labels, positions, kernel, distance, groups, coords, thumbnails, captions


def assert_saves_with_record(figure, path):
    plotting.save_figure(figure, path, RECORD)
    with Image.open(path) as image:
        assert image.info["losskernel:rule"] == "figure1"


def test_every_figure_saves_with_its_record(rng, tmp_path):
    labels, positions, kernel, distance, groups, coords, thumbnails, captions = tiny_imagenet(rng)
    insets = figure1.choose_insets(kernel, groups, k=3,
                                   excluded_edges=labels[:, None] == labels[None, :])
    table = pd.DataFrame({"depth": [1, 2, 3], "purity": [0.8, 0.4, 0.0],
                          "chance": [0.5, 0.1, 0.0], "lift": [1.6, 4.0, np.nan]})
    figures = [
        figure1.plot_hierarchy_umap(coords[:, :2], positions, "2-D", groups=groups),
        figure1.plot_hierarchy_umap_3d(coords, positions, "3-D"),
        figure1.plot_kernel_beside_hierarchy(kernel, distance, np.argsort(positions), "B"),
        figure1.plot_neighbourhood_insets(coords[:, :2], positions, insets, thumbnails, captions),
        figure1.plot_neighbourhood_insets(coords[:, :2], positions, [], thumbnails, captions),
        figure1.plot_taxonomic_lift(table, "lift"),
    ]
    for index, figure in enumerate(figures):
        assert_saves_with_record(figure, tmp_path / f"figure{index}.png")


def test_orbit_views_show_one_viewpoint_each(rng):
    views = ((10, 0), (45, 90), (80, 180))
    figure = figure1.plot_hierarchy_umap_3d(rng.normal(size=(20, 3)), np.linspace(0, 1, 20),
                                            views=views)
    axes_3d = [axis for axis in figure.axes if axis.name == "3d"]
    assert [(axis.elev, axis.azim) for axis in axes_3d] == list(views)
    plt.close(figure)


def test_insets_with_missing_thumbnails_and_no_insets_still_draw(rng):
    coords, positions = rng.normal(size=(5, 2)), np.linspace(0, 1, 5)
    inset = figure1.Inset("dogs", anchor=0, neighbours=[3, 1])
    figure = figure1.plot_neighbourhood_insets(coords, positions, [inset], {}, {})
    assert len(figure.axes) == 1 + 1 + 3  # UMAP, colourbar, anchor and two neighbours
    plt.close(figure)
    empty = figure1.plot_neighbourhood_insets(coords, positions, [], {}, {})
    assert empty.axes[0].get_title() == "no inset group present"
    plt.close(empty)


def test_hierarchy_colours_are_the_colourmap_ends():
    colours = figure1.hierarchy_colours(np.array([0.0, 1.0]))
    colourmap = plt.get_cmap(figure1.HIERARCHY_COLOURMAP)
    np.testing.assert_array_equal(colours, [colourmap(0.0), colourmap(1.0)])
    assert not np.allclose(colours[0], colours[1])
    with pytest.raises(ValueError, match="must lie in"):
        figure1.hierarchy_colours(np.array([0.5, 1.5]))


def test_block_average_known_answers():
    square = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(figure1.block_average(square, 2),
                                  [[2.5, 4.5], [10.5, 12.5]])
    uneven = np.arange(9.0).reshape(3, 3)  # cut at 0, 1, 3: blocks of one and two
    np.testing.assert_array_equal(figure1.block_average(uneven, 2), [[0.0, 1.5], [4.5, 6.0]])
    np.testing.assert_array_equal(figure1.block_average(uneven, 3), uneven)


def test_large_heatmap_is_downsampled_before_drawing(rng):
    size = 3000
    kernel = np.eye(size)
    distance = np.zeros((size, size))
    figure = figure1.plot_kernel_beside_hierarchy(kernel, distance, np.arange(size),
                                                  max_pixels=1000)
    for axis in figure.axes[:2]:  # the two heatmaps, then their colourbars
        (image,) = axis.get_images()
        assert image.get_array().shape == (1000, 1000)
        assert axis.get_xlim() == (-0.5, size - 0.5)  # ticks still count images
    plt.close(figure)


def test_heatmaps_follow_the_order():
    kernel = np.array([[1.0, 0.2, 0.3], [0.2, 1.0, 0.4], [0.3, 0.4, 1.0]])
    distance = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    order = np.array([2, 0, 1])
    figure = figure1.plot_kernel_beside_hierarchy(kernel, distance, order)
    shown_kernel = figure.axes[0].get_images()[0].get_array()
    shown_distance = figure.axes[1].get_images()[0].get_array()
    np.testing.assert_array_equal(shown_kernel, kernel[np.ix_(order, order)])
    np.testing.assert_array_equal(shown_distance[0], [0.0, 2.0, 3.0])
    plt.close(figure)


def planted_kernel():
    """Dogs 0-2, birds 3-5, ungrouped 6-8. Among dogs only 1 has both other dogs as its two
    nearest neighbours (2 closer than 0); 0 and 2 each have an ungrouped image closer than their
    second dog. Birds are all equally close to each other. Every other pair is at -0.1."""
    kernel = np.full((9, 9), -0.1)
    np.fill_diagonal(kernel, 1.0)
    for i, j, value in [(1, 2, 0.95), (1, 0, 0.9), (0, 6, 0.8), (2, 7, 0.8), (0, 2, 0.1),
                        (3, 4, 0.9), (3, 5, 0.9), (4, 5, 0.9)]:
        kernel[i, j] = kernel[j, i] = value
    groups = np.array(["dogs"] * 3 + ["birds"] * 3 + [""] * 3)
    return kernel, groups


def test_choose_insets_picks_the_most_in_group_member():
    kernel, groups = planted_kernel()
    insets = figure1.choose_insets(kernel, groups, k=2,
                                   group_order=["dogs", "primates", "birds"])
    assert insets == [figure1.Inset("dogs", 1, [2, 0]),  # primates absent: skipped
                      figure1.Inset("birds", 3, [4, 5])]  # a three-way tie: the lowest index


def test_choose_insets_group_order_defaults_to_first_appearance_and_filters():
    kernel, groups = planted_kernel()
    assert [inset.group for inset in figure1.choose_insets(kernel, groups, k=2)] == [
        "dogs", "birds"]
    assert [inset.group for inset in figure1.choose_insets(kernel, groups, k=2,
                                                           group_order=["birds"])] == ["birds"]
    assert figure1.choose_insets(kernel, groups, k=2, group_order=["insects"]) == []


def test_choose_insets_respects_excluded_edges():
    kernel, groups = planted_kernel()
    excluded = np.zeros_like(kernel, dtype=bool)
    excluded[1, 2] = excluded[2, 1] = True  # e.g. dogs 1 and 2 share a label
    # now 0 and 1 each keep one dog among their two neighbours, and 2 keeps dog 0 (0.1):
    # a three-way tie, the lowest index wins
    (dogs,) = figure1.choose_insets(kernel, groups, k=2, group_order=["dogs"],
                                    excluded_edges=excluded)
    assert dogs == figure1.Inset("dogs", 0, [1, 6])
    everything_else = ~np.eye(9, dtype=bool)
    everything_else[3, [4, 5]] = False  # bird 3 may only see 4 and 5
    (birds,) = figure1.choose_insets(kernel, groups, k=4, group_order=["birds"],
                                     excluded_edges=everything_else)
    assert birds == figure1.Inset("birds", 3, [4, 5])  # fewer than k: only two candidates
