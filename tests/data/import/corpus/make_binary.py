"""Makes the corpus's binary briefings, checked in beside this file; run by hand, on purpose:

    .venv/bin/pip install msgforge==1.0.0   # writes .msg; not a dependency of the project
    .venv/bin/python tests/data/import/corpus/make_binary.py

- word-table.docx     python-docx (the test extra): heading styles, a table of dates
                      with a header row, a picture with alt text in the middle of a
                      section and one without at the start of another, "*new*"
- email-html.eml      the standard library: an Outlook-style HTML part with an inline
                      picture (cid:) and a table, its plain-text alternative, a
                      virus-scan footer, and a quoted earlier message
- outlook.msg         msgforge (MIT, https://github.com/awarmplace/msgforge): an
                      Outlook message with an HTML body, its sender and sent time, a
                      "Get Outlook for iOS" line and Outlook's reply header under it

msgforge writes the same bytes for the same message; the .docx (zip times) and the
.eml (a random MIME boundary) differ byte for byte on each run but read the same, so
the golden drafts in golden/ do not change.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def word_table() -> None:
    import docx

    doc = docx.Document()
    doc.core_properties.created = dt.datetime(2025, 9, 1)
    doc.core_properties.modified = dt.datetime(2025, 9, 1)
    doc.core_properties.last_modified_by = "Comms"
    doc.core_properties.author = "Comms"
    doc.add_heading("Schools Bulletin – 12 September 2025", 0)
    doc.add_paragraph("Dear colleagues,")
    doc.add_paragraph(
        "Welcome back to a new school year. This bulletin brings the dates for the autumn "
        "term and news of the *new* science centre."
    )
    doc.add_heading("Dates for the Autumn Term", 1)
    doc.add_paragraph("Please put these dates in your diary now.")
    table = doc.add_table(rows=4, cols=3)
    rows = [
        ("Date", "Event", "Where"),
        ("Thursday 2 October", "Open evening for new parents", "Every secondary school"),
        ("20 October", "Training day | schools closed", "All schools"),
        ("27 to 31 October", "Half term", "–"),
    ]
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            cell = table.cell(r, c)
            cell.text = ""
            run = cell.paragraphs[0].add_run(value)
            run.bold = r == 0
    doc.add_paragraph("Each school will confirm the times of its own open evening.")
    doc.add_heading("The New Science Centre", 1)
    doc.add_paragraph(
        "The science centre at Eastgate Academy opened its doors to pupils on Monday."
    )
    doc.add_picture(io.BytesIO(png(4, 3, (30, 110, 160))))
    doc.inline_shapes[0]._inline.docPr.set("descr", "Pupils in the new chemistry laboratory")
    doc.add_paragraph(
        "Pupils from every school in the city will be able to book a visit from November."
    )
    doc.add_heading("Travel Passes", 1)
    doc.add_picture(io.BytesIO(png(3, 3, (200, 120, 20))))
    doc.add_paragraph(
        "Travel passes for pupils in year 7 will be posted to families before half term."
    )
    doc.add_paragraph("Best wishes,")
    doc.add_paragraph("Priya Shah")
    doc.add_paragraph("Assistant Director for Schools")
    doc.save(str(HERE / "word-table.docx"))


EML_HTML = """<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<style><!-- p.MsoNormal {margin:0cm; font-family:"Calibri",sans-serif;} --></style>
</head><body lang="EN-GB"><div class="WordSection1">
<p class="MsoNormal">Dear colleagues,<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">Admissions for September open next week. This is what changes for
families this year and what your school office needs to do.<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal"><b>Open Mornings<o:p></o:p></b></p>
<p class="MsoNormal">Every primary school holds an open morning in November. Families can
book a place on the <a href="https://riverside.example.org/admissions">admissions
pages</a>.<o:p></o:p></p>
<p class="MsoNormal"><img width="4" height="3" src="cid:image001.png@01DC2A10.6E1C5F30"
alt="Parents and children touring a classroom"><o:p></o:p></p>
<p class="MsoNormal">Staff who show families round will be given a short guide.<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal"><b>Key Dates<o:p></o:p></b></p>
<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0">
<tr><td><p class="MsoNormal"><b>Date<o:p></o:p></b></p></td>
<td><p class="MsoNormal"><b>What happens<o:p></o:p></b></p></td></tr>
<tr><td><p class="MsoNormal">1 November<o:p></o:p></p></td>
<td><p class="MsoNormal">Applications open<o:p></o:p></p></td></tr>
<tr><td><p class="MsoNormal">15 January<o:p></o:p></p></td>
<td><p class="MsoNormal">Applications close<o:p></o:p></p></td></tr>
</table>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">Best wishes,<o:p></o:p></p>
<p class="MsoNormal">Ravi Patel<br>Head of Admissions<br>Riverside City Council<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<p class="MsoNormal">This email has been scanned for viruses and malware by Mimecast.<o:p></o:p></p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">
<p class="MsoNormal"><b>From:</b> Comms Team &lt;comms@riverside.example.org&gt;<br>
<b>Sent:</b> 14 October 2025 09:00<br><b>To:</b> Patel, Ravi<br>
<b>Subject:</b> Admissions piece?<o:p></o:p></p></div>
<p class="MsoNormal">Ravi, can we have a piece on admissions for the next issue?<o:p></o:p></p>
</div></body></html>
"""

EML_TEXT = """Dear colleagues,

Admissions for September open next week. This is what changes for families this year
and what your school office needs to do.

Open Mornings
Every primary school holds an open morning in November. Families can book a place on
the admissions pages<https://riverside.example.org/admissions>.

Staff who show families round will be given a short guide.

Key Dates
Date        What happens
1 November  Applications open
15 January  Applications close

Best wishes,
Ravi Patel
Head of Admissions
Riverside City Council

This email has been scanned for viruses and malware by Mimecast.
"""


def email_html() -> None:
    msg = EmailMessage()
    msg["From"] = "Patel, Ravi <ravi.patel@riverside.example.org>"
    msg["To"] = "Comms Team <comms@riverside.example.org>"
    msg["Subject"] = "RE: Admissions piece for the October issue"
    msg["Date"] = format_datetime(dt.datetime(2025, 10, 16, 11, 20, tzinfo=dt.UTC))
    msg["Message-ID"] = "<admissions-2025@riverside.example.org>"
    msg.set_content(EML_TEXT)
    msg.add_alternative(EML_HTML, subtype="html")
    html = msg.get_body(("html",))
    assert isinstance(html, EmailMessage)
    html.add_related(
        png(4, 3, (40, 140, 90)),
        maintype="image",
        subtype="png",
        cid="<image001.png@01DC2A10.6E1C5F30>",
        filename="image001.png",
    )
    (HERE / "email-html.eml").write_bytes(bytes(msg))


MSG_HTML = """<html><body>
<p>Hi all,</p>
<p>Here is the piece on the summer reading challenge for the next bulletin. Libraries
across the city are taking part again this year.</p>
<p><b>What Is the Reading Challenge?</b></p>
<p>Children read six books of their choice over the summer holidays and collect a medal
and a certificate when they finish.</p>
<p><b>How Can Schools Help?</b></p>
<p>Schools can hand out the leaflets in the last week of term and celebrate the children
who finish in a September assembly.</p>
<p>Many thanks,</p>
<p>Chloe Adams<br>Library Services Manager</p>
<p>Get Outlook for iOS</p>
<div id="divRplyFwdMsg"><p><b>From:</b> Comms Team<br><b>Sent:</b> Monday, April 21, 2025
9:00 AM<br><b>Subject:</b> Reading challenge</p></div>
<p>Chloe, could you write a short piece about the reading challenge?</p>
</body></html>"""

MSG_TEXT = """Hi all,

Here is the piece on the summer reading challenge for the next bulletin. Libraries across
the city are taking part again this year.

What Is the Reading Challenge?

Children read six books of their choice over the summer holidays and collect a medal and
a certificate when they finish.

How Can Schools Help?

Schools can hand out the leaflets in the last week of term and celebrate the children who
finish in a September assembly.

Many thanks,

Chloe Adams
Library Services Manager

Get Outlook for iOS
"""


def outlook_msg() -> None:
    from msgforge import Message

    msg = Message(
        subject="FW: Summer reading challenge",
        html_body=MSG_HTML,
        text_body=MSG_TEXT,
        sender=("chloe.adams@riverside.example.org", "Adams, Chloe"),
        to=[("comms@riverside.example.org", "Comms Team")],
        sent=dt.datetime(2025, 4, 22, 8, 30),
    )
    msg.save(str(HERE / "outlook.msg"))


if __name__ == "__main__":
    word_table()
    email_html()
    outlook_msg()
