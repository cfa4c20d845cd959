"""A building's calendar hours (``day_starts`` / ``day_ends``, workplace.day_hours): every
existing building gets 07:00–21:00, the hours the portal's grids drew for all of them."""

import datetime

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('exchange_auth', '0008_approval_time_limit'),
        ('workplace', '0011_room_one_show_subjects'),
    ]

    operations = [
        migrations.AddField(
            model_name='building',
            name='day_ends',
            field=models.TimeField(default=datetime.time(21, 0), help_text='Local time they end, on the hour or half hour, after the start; 00:00 means until midnight (24:00).'),
        ),
        migrations.AddField(
            model_name='building',
            name='day_starts',
            field=models.TimeField(default=datetime.time(7, 0), help_text="Local time the portal's calendars of this building start each day, on the hour or half hour (00:00 for a 24-hour site)."),
        ),
        migrations.AddConstraint(
            model_name='building',
            constraint=models.CheckConstraint(condition=models.Q(('day_ends', datetime.time(0, 0)), ('day_starts__lt', models.F('day_ends')), _connector='OR'), name='building_day_ends_after_it_starts', violation_error_message='The day must end after it starts (00:00 means until midnight).'),
        ),
    ]
