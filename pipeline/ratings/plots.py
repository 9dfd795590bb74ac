"""Leaderboard pictures: ratings with 95% CIs, and the pairwise win-rate heatmap, as PNG.

Drawn with Pillow rather than matplotlib: importing matplotlib alone took longer
(0.8-1.2 s here) than counting, fitting and bootstrapping a million battles, and
these two pictures need only dots, lines, cells and text.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from core.parquet_io import atomic_path

INK, GRID, BLUE, BLANK = (30, 30, 30), (225, 225, 225), (31, 119, 180), (190, 190, 190)
MARGIN = 12
WIN_RATE_TITLE = "share of battles A (row) won against B (column); ties half, grey: never met"


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _width(draw, text: str, font) -> int:
    return int(math.ceil(draw.textlength(text, font=font)))


def _ticks(low: float, high: float, most: int = 8) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    span = max(high - low, 1e-9)
    raw = span / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def plot_ratings(table, path: Path, top: int = 40) -> None:
    """One row per model (the best `top`): the rating as a dot, its 95% CI as a bar."""
    from PIL import Image, ImageDraw

    shown = {c: list(table[c])[:top] for c in ("model", "rating", "lower", "upper")}
    rows = len(shown["model"])
    font, title_font = _font(12), _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max([_width(probe, str(m), font) for m in shown["model"]] + [40])
    plot_w, row_h, top_h, bottom_h = 560, 18, 40, 48
    width = MARGIN + label_w + 10 + plot_w + MARGIN
    height = top_h + rows * row_h + bottom_h
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left = MARGIN + label_w + 10
    low = min(shown["lower"] + shown["rating"]) if rows else 0.0
    high = max(shown["upper"] + shown["rating"]) if rows else 1.0
    pad = max((high - low) * 0.05, 1.0)
    low, high = low - pad, high + pad

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot_w

    bottom = top_h + rows * row_h
    for tick in _ticks(low, high):
        draw.line([(x(tick), top_h), (x(tick), bottom)], fill=GRID)
        text = f"{tick:g}"
        draw.text((x(tick) - _width(draw, text, font) / 2, bottom + 4), text, fill=INK, font=font)
    draw.rectangle([left, top_h, left + plot_w, bottom], outline=INK)
    for i in range(rows):
        y = top_h + i * row_h + row_h / 2
        name = str(shown["model"][i])
        draw.text((left - 8 - _width(draw, name, font), y - 7), name, fill=INK, font=font)
        draw.line([(x(shown["lower"][i]), y), (x(shown["upper"][i]), y)], fill=BLUE, width=2)
        for end in ("lower", "upper"):
            draw.line([(x(shown[end][i]), y - 4), (x(shown[end][i]), y + 4)], fill=BLUE, width=2)
        cx = x(shown["rating"][i])
        draw.ellipse([cx - 4, y - 4, cx + 4, y + 4], fill=BLUE)
    caption = "rating (Elo scale, median of bootstrap, 95% CI)"
    draw.text(
        (left + (plot_w - _width(draw, caption, font)) / 2, bottom + 24),
        caption,
        fill=INK,
        font=font,
    )
    total = len(table["model"])
    title = f"Bradley-Terry ratings ({f'top {top} of ' if total > top else ''}{total} models)"
    draw.text((MARGIN, 12), title, fill=INK, font=title_font)
    with atomic_path(path) as tmp:  # zlib's fastest: a third of the time, a little larger
        image.save(tmp, format="PNG", compress_level=1)


def _colours(rates: np.ndarray) -> np.ndarray:
    """RGB per rate: red (0) through white (0.5) to blue (1); never met (NaN): grey."""
    red, white, blue = np.array([178, 24, 43]), np.array([247, 247, 247]), np.array([33, 102, 172])
    r = np.nan_to_num(rates, nan=0.5)[..., None]
    mix = np.where(r < 0.5, red + (white - red) * r * 2, white + (blue - white) * (r - 0.5) * 2)
    mix[np.isnan(rates)] = BLANK
    return np.round(mix).astype(np.uint8)


def _cells(rgb: np.ndarray, size: int) -> np.ndarray:
    """Each entry of a rows x cols x 3 array as a size x size block, a white line between."""
    blocks = rgb.repeat(size, axis=0).repeat(size, axis=1)
    blocks[size - 1 :: size, :] = 255
    blocks[:, size - 1 :: size] = 255
    return blocks


def plot_win_rates(models: list[str], rates: np.ndarray, path: Path, top: int = 30) -> None:
    """The share of battles row model A won against column model B, for the first `top` models."""
    from PIL import Image, ImageDraw

    k = min(top, len(models))
    names = [str(m) for m in models[:k]]
    font, title_font = _font(11), _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label = max([_width(probe, n, font) for n in names] + [30])
    cell, top_h, legend_w = 18, 40, 70
    grid_left, grid_top = MARGIN + label + 8, top_h
    width = grid_left + k * cell + legend_w
    height = grid_top + k * cell + 8 + label + 30
    title_w = _width(probe, WIN_RATE_TITLE, title_font) + 2 * MARGIN
    image = Image.new("RGB", (max(width, title_w), height), "white")
    draw = ImageDraw.Draw(image)
    image.paste(Image.fromarray(_cells(_colours(rates[:k, :k]), cell)), (grid_left, grid_top))
    for i in range(k):
        name_w = _width(draw, names[i], font)
        draw.text((grid_left - 6 - name_w, grid_top + i * cell + 3), names[i], fill=INK, font=font)
        # Column labels run upwards below the grid: text drawn on its own strip, turned.
        strip = Image.new("RGB", (name_w + 2, 14), "white")
        ImageDraw.Draw(strip).text((0, 0), names[i], fill=INK, font=font)
        image.paste(
            strip.rotate(90, expand=True), (grid_left + i * cell + 2, grid_top + k * cell + 6)
        )
    legend_x = grid_left + k * cell + 14
    scale = _colours(np.linspace(1, 0, max(k * cell, 2))[:, None]).repeat(12, axis=1)
    image.paste(Image.fromarray(scale), (legend_x, grid_top))
    for value, y in ((1.0, grid_top), (0.5, grid_top + k * cell / 2), (0.0, grid_top + k * cell)):
        draw.text((legend_x + 16, y - 6), f"{value:g}", fill=INK, font=font)
    draw.text((MARGIN, 12), WIN_RATE_TITLE, fill=INK, font=title_font)
    with atomic_path(path) as tmp:  # zlib's fastest: a third of the time, a little larger
        image.save(tmp, format="PNG", compress_level=1)
