import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DRF_TOKENS = "authtoken_token"  # DRF authtoken's table, from before the tokens were hashed


def hash_plaintext_tokens(apps, schema_editor):
    """Tokens made by DRF authtoken keep working: each becomes a hashed ApiToken (knox's
    digest: SHA-512 of the token; its first 15 characters as the lookup key) and the
    plaintext row is deleted. Only the table is read: DRF authtoken is no longer installed."""
    connection = schema_editor.connection
    if DRF_TOKENS not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("workplace", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {DRF_TOKENS}")  # noqa: S608 (a constant)
        rows = cursor.fetchall()
        ApiToken.objects.bulk_create([
            ApiToken(
                digest=hashlib.sha512(key.encode()).hexdigest(), token_key=key[:15], user_id=user_id,
                name="API token (from before tokens were hashed)",
            )
            for key, user_id, _ in rows
        ])
        for key, _, created in rows:  # keep when each was made (auto_now_add set "now")
            ApiToken.objects.filter(pk=hashlib.sha512(key.encode()).hexdigest()).update(created=created)
        cursor.execute(f"DELETE FROM {DRF_TOKENS}")  # noqa: S608 (a constant)


class Migration(migrations.Migration):

    dependencies = [
        ('workplace', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('digest', models.CharField(max_length=128, primary_key=True, serialize=False)),
                ('token_key', models.CharField(db_index=True, max_length=25)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('expiry', models.DateTimeField(blank=True, null=True)),
                ('name', models.CharField(help_text='Which client uses it: an integration, a kiosk ...', max_length=100)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_token_set', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'API token',
                'ordering': ['user', 'name'],
            },
        ),
        migrations.RunPython(hash_plaintext_tokens, migrations.RunPython.noop),
    ]
