"""Dates and times as the admin and the Outlook page show them: 24-hour, the zone named
("1 Dec 2026, 23:33 UTC"), no trailing period to double up with a sentence's
(Django's English default is "Dec. 1, 2026, 11:33 p.m.")."""

DATETIME_FORMAT = "j M Y, H:i T"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATE_FORMAT = "Y-m-d"
