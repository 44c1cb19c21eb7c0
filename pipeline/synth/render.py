"""Pinhole projection and drawing of one frame, with every object's exact visible pixel box.

Every surface is a textured plane, so drawing is one homography warp per plane restricted to its
on-screen rectangle: sky, ground (masked below the horizon), facades, then objects far to near.
Object masks go into an id buffer, which yields each object's drawn box, how much of it is in the
frame and how much is not hidden behind nearer objects, i.e. ground truth that matches the pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .scene import NEAR, Face, Rig, Scene, Thing
from .textures import sky_column

MAX_DEPTH = 150.0  # metres; objects further away are skipped


@dataclass(frozen=True)
class Camera:
    """Intrinsics K, world-to-camera rotation R (rows: right, down, forward), centre C, (w, h)."""

    K: np.ndarray
    R: np.ndarray
    C: np.ndarray
    size: tuple[int, int]


@dataclass(frozen=True)
class Seen:
    """One drawn object: clipped pixel box [x1, y1, x2, y2) and its visibility fractions."""

    index: int
    box: tuple[int, int, int, int]
    in_frame: float  # share of the object's projected box that lies inside the frame
    unoccluded: float  # share of its drawn pixels not covered by nearer objects

    def visible(self, size: tuple[int, int], *, min_area: float = 0.002, min_side: int = 0) -> bool:
        """The ground-truth visibility rule: big enough, mostly in frame, not (nearly) hidden."""
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return (w * h >= min_area * size[0] * size[1] and min(w, h) >= min_side and self.in_frame >= 0.3
                and self.unoccluded >= 0.15)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """World-to-camera rotation for a camera looking along +Z, turned by yaw, pitch (down) and roll."""
    f = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    r = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    d = np.cross(r, f)
    r2 = r * np.cos(roll) + d * np.sin(roll)
    d2 = -r * np.sin(roll) + d * np.cos(roll)
    return np.stack([r2, d2, f])


def camera_at(rig: Rig, t: float, size: tuple[int, int], extra_yaw: float = 0.0) -> Camera:
    """The rig's camera at time t for a frame of `size` (w, h)."""
    pos, yaw, pitch, roll = rig.pose(t)
    w, h = size
    focal = (w / 2) / np.tan(rig.hfov / 2)
    K = np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1.0]])
    return Camera(K=K, R=rotation(yaw + extra_yaw, pitch, roll), C=pos, size=size)


def homography(cam: Camera, origin: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Texture pixel (col, row) -> image pixel for the plane origin + col*u + row*v."""
    return cam.K @ np.column_stack([cam.R @ u, cam.R @ v, cam.R @ (origin - cam.C)])


def project(cam: Camera, pts: np.ndarray) -> np.ndarray:
    """World points (N, 3) -> pixels (N, 2); callers keep points in front of the camera."""
    pc = (pts - cam.C) @ cam.R.T @ cam.K.T
    return pc[:, :2] / pc[:, 2:3]


def render_frame(scene: Scene, cam: Camera, t: float, things: Sequence[Thing] | None = None
                 ) -> tuple[np.ndarray, list[Seen]]:
    """Draw the scene at time t; returns the BGR frame and every drawn object's Seen record."""
    w, h = cam.size
    frame = np.empty((h, w, 3), np.uint8)
    line = _horizon(cam)
    _draw_sky(frame, scene, line)
    _draw_ground(frame, cam, scene.ground, line)
    for face in scene.buildings:
        _draw_face(frame, cam, face, None)
    things = scene.things if things is None else things
    ids = np.zeros((h, w), np.uint16)
    drawn: dict[int, tuple[list, list, int]] = {}
    for index, thing in _far_to_near(cam, things, t):
        boxes, full, npx = [], [], 0
        for face in thing.faces(t, cam.C):
            hit = _draw_face(frame, cam, face, (ids, index + 1))
            if hit is not None:
                boxes.append(hit[0])
                full.append(hit[1])
                npx += hit[2]
        if npx:
            drawn[index] = (boxes, full, npx)
    counts = np.bincount(ids.ravel(), minlength=len(things) + 1)
    return frame, [_seen(i, *d, int(counts[i + 1]), (w, h)) for i, d in drawn.items()]


def _seen(index: int, boxes: list, full: list, npx: int, shown: int, size: tuple[int, int]) -> Seen:
    box = _union(boxes)
    fx1, fy1, fx2, fy2 = _union(full)
    cx1, cy1, cx2, cy2 = max(fx1, 0), max(fy1, 0), min(fx2, size[0]), min(fy2, size[1])
    full_area = max(1e-6, (fx2 - fx1) * (fy2 - fy1))
    in_frame = max(0.0, cx2 - cx1) * max(0.0, cy2 - cy1) / full_area
    return Seen(index, tuple(int(v) for v in box), float(in_frame), shown / npx)


def _union(boxes: list) -> tuple:
    a = np.asarray(boxes, float)
    return a[:, 0].min(), a[:, 1].min(), a[:, 2].max(), a[:, 3].max()


def _far_to_near(cam: Camera, things: Sequence[Thing], t: float) -> list[tuple[int, Thing]]:
    """Objects in front of the camera and within range, sorted far to near for painter's order."""
    order = []
    for index, thing in enumerate(things):
        z0 = thing.z_at(t)
        centre = np.array([thing.x0 + thing.width / 2, 0.0, z0 + thing.depth / 2])
        dist = float(cam.R[2] @ (centre - cam.C))
        if -thing.depth < dist < MAX_DEPTH:
            order.append((dist, index, thing))
    order.sort(key=lambda item: -item[0])
    return [(index, thing) for _, index, thing in order]


def _horizon(cam: Camera) -> tuple[float, float, float]:
    """(a, b, c) with a*u + b*v + c < 0 exactly for pixels whose ray points down at the ground."""
    Kinv = np.linalg.inv(cam.K)
    coeff = cam.R[:, 1] @ Kinv  # world-Y of the ray through (u, v, 1)
    return float(coeff[0]), float(coeff[1]), float(coeff[2])


def _horizon_v(line: tuple[float, float, float], u: float) -> float:
    a, b, c = line
    return -(a * u + c) / b


def _draw_sky(frame: np.ndarray, scene: Scene, line: tuple[float, float, float]) -> None:
    h, w = frame.shape[:2]
    col = sky_column(scene.look, h)
    off = int(np.clip(h - _horizon_v(line, w / 2), 0, h))
    frame[:] = col[off:off + h]


def _draw_ground(frame: np.ndarray, cam: Camera, ground: Face, line: tuple[float, float, float]) -> None:
    """Warp the ground texture into the rows below the horizon and keep only pixels below it."""
    h, w = frame.shape[:2]
    v0, v1 = _horizon_v(line, 0), _horizon_v(line, w - 1)
    top = int(np.clip(np.floor(min(v0, v1)), 0, h))
    if top >= h:
        return
    H = homography(cam, ground.origin, ground.u, ground.v)
    M = np.array([[1, 0, 0], [0, 1, -top], [0, 0, 1.0]]) @ H
    fill = tuple(int(c) for c in ground.tex[-1, ground.tex.shape[1] // 2])
    warped = cv2.warpPerspective(ground.tex, M, (w, h - top), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    mask = np.zeros((h - top, w), np.uint8)
    poly = np.array([[0, v0 - top], [w - 1, v1 - top], [w - 1, h - top], [0, h - top]])
    cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 1)
    np.copyto(frame[top:], warped, where=mask[..., None].astype(bool))


def _clip_to_depth(cam: Camera, face: Face) -> Face | None:
    """The part of a face at least NEAR in front of the camera (cropping texture columns)."""
    fwd = cam.R[2]
    d0, du, dv = fwd @ (face.origin - cam.C), fwd @ face.u, fwd @ face.v
    rows, cols = face.tex.shape[:2]
    lo, hi = 0.0, float(cols)
    for d in (d0, d0 + dv * (rows - 1)):
        if abs(du) < 1e-12:
            if d < NEAR:
                return None
        elif du > 0:
            lo = max(lo, (NEAR - d) / du)
        else:
            hi = min(hi, (NEAR - d) / du)
    c0, c1 = int(np.ceil(lo)), int(np.floor(hi))
    if c1 - c0 < 2:
        return None
    if c0 == 0 and c1 == cols:
        return face
    return Face(face.tex[:, c0:c1], face.origin + c0 * face.u, face.u, face.v)


def _draw_face(frame: np.ndarray, cam: Camera, face: Face, ids: tuple[np.ndarray, int] | None
               ) -> tuple[tuple, tuple, int] | None:
    """Warp one face into its on-screen rectangle.

    Opaque (BGR) faces are pasted. BGRA faces are alpha-blended and write `ids` = (buffer, id)
    where alpha > 0.5; they return (drawn box, unclipped projected box, drawn pixel count).
    """
    face = _clip_to_depth(cam, face)
    if face is None:
        return None
    rows, cols = face.tex.shape[:2]
    H = homography(cam, face.origin, face.u, face.v)
    corners = np.array([[0, 0, 1], [cols - 1, 0, 1], [cols - 1, rows - 1, 1], [0, rows - 1, 1]], float) @ H.T
    corners = corners[:, :2] / corners[:, 2:3]
    (fx1, fy1), (fx2, fy2) = corners.min(0), corners.max(0) + 1
    w, h = cam.size
    x1, y1 = max(0, int(np.floor(fx1))), max(0, int(np.floor(fy1)))
    x2, y2 = min(w, int(np.ceil(fx2))), min(h, int(np.ceil(fy2)))
    if x2 <= x1 or y2 <= y1:
        return None
    M = np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1.0]]) @ H
    roi = frame[y1:y2, x1:x2]
    if face.tex.shape[2] == 3:
        roi[:] = cv2.warpPerspective(face.tex, M, (x2 - x1, y2 - y1), dst=roi.copy(), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_TRANSPARENT)
        return None
    warped = cv2.warpPerspective(face.tex, M, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = warped[..., 3:4].astype(np.float32) * (1 / 255)
    roi[:] = (roi + (warped[..., :3] - roi.astype(np.float32)) * alpha).astype(np.uint8)
    solid = warped[..., 3] > 127
    ys, xs = np.nonzero(solid)
    if len(xs) == 0:
        return None
    ids[0][y1:y2, x1:x2][solid] = ids[1]
    box = (x1 + xs.min(), y1 + ys.min(), x1 + xs.max() + 1, y1 + ys.max() + 1)
    return box, (fx1, fy1, fx2, fy2), len(xs)
