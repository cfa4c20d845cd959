"""The per-provider strict mode is now the instance property (0002): drop the column."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('exchange_auth', '0002_instance_properties'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='calendarprovider',
            name='strict_mode',
        ),
    ]
