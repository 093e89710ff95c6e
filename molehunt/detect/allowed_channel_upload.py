"""Uploads through allowed channels."""

from __future__ import annotations

from typing import ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding


class AllowedChannelUploadDetector:
    """Uploads through allowed channels: request bytes to allowed sites (shopping...)
    far above the person's norm, multipart uploads to chat or message endpoints,
    CONNECT tunnels carrying large uploads; stronger after a bulk read on the same
    host within ``follow_hours``."""

    name: ClassVar[str] = "allowed_channel_upload"
    severity: ClassVar[int] = 60
    description: ClassVar[str] = "large uploads through sites the policy allows"
    source: ClassVar[str] = "web"

    def find(self, ctx: DetectContext) -> list[Finding]:
        s = ctx.settings
        u = ctx.uploads()
        u = u.filter(u.allowed | (u.method == "CONNECT"))
        path = u.path.fill_null("").lower()
        chat = ibis.literal(False)
        for word in s.chat_path_words:
            chat = chat | path.contains(word)
        multipart = u.request_content_type.fill_null("").lower().startswith("multipart/")
        u = u.mutate(
            chat=(chat & multipart).cast("int32"),
            tunnel=((u.method == "CONNECT") & (u.bytes_out >= s.upload_day_bytes)).cast("int32"),
        )
        d = u.group_by(["actor", "day"]).aggregate(
            bytes=u.bytes_out.sum(),
            chat=u.chat.max(),
            tunnel=u.tunnel.max(),
            ids=u.event_id.collect(),
            first=u.time.min(),
            last=u.time.max(),
            host=u.hostname.max(),
            sites=u.web_host.collect(distinct=True),
        )
        w = ibis.window(group_by=d.actor, order_by=d.day, rows=(-s.baseline_days, -1))
        d = d.mutate(own=d.bytes.median().over(w).fill_null(0))
        d = d.filter(
            ((d.bytes >= s.upload_day_bytes) & (d.bytes > d.own * s.upload_ratio))
            | (d.chat == 1)
            | (d.tunnel == 1)
        )
        b = ctx.bulk_reads().select(b_id="event_id", b_time="time", b_host="hostname")
        after = d.join(
            b,
            [
                d.host == b.b_host,
                b.b_time <= d.last,
                b.b_time > d.first - ibis.interval(hours=s.follow_hours),
            ],
        )
        after = after.group_by(["actor", "day"]).aggregate(
            read_ids=after.b_id.collect(distinct=True)
        )
        after = after.rename(a_actor="actor", a_day="day")
        d = d.left_join(after, [d.actor == after.a_actor, d.day == after.a_day])
        out = []
        for row in ctx.collect(d):
            if not ctx.reported(row["day"]):
                continue
            reads = row["read_ids"] or []
            how = [
                h
                for h, on in (
                    ("multipart upload to a chat endpoint", row["chat"]),
                    ("large CONNECT upload", row["tunnel"]),
                    ("far above own norm", row["bytes"] > row["own"] * s.upload_ratio),
                )
                if on
            ]
            severity = self.severity + (25 if reads else 0) + (10 if row["chat"] else 0)
            mb = int(row["bytes"]) / 1_048_576
            after_read = f", {len(reads)} bulk read(s) before on that host" if reads else ""
            out.append(
                Finding(
                    detector=self.name,
                    day=row["day"],
                    time=ctx.utc(row["last"]),
                    severity=min(100, severity),
                    person_id=row["actor"],
                    title=f"{mb:.1f} MB uploaded to {', '.join(sorted(row['sites']))} "
                    f"({'; '.join(how)}{after_read})",
                    host=row["host"],
                    event_ids=ctx.ids(row["ids"], reads),
                    details={
                        "bytes_out": int(row["bytes"]),
                        "own_median": float(row["own"]),
                        "sites": sorted(row["sites"]),
                        "bulk_reads_before": len(reads),
                        "how": how,
                    },
                )
            )
        return out
