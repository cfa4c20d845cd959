"""Calendar providers as the product had them before the sync-mode property: with a
per-provider ``strict_mode`` checkbox (replaced by 0002, dropped by 0003)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CalendarProvider',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=120, unique=True)),
                ('active', models.BooleanField(default=False, help_text='Only one provider can be active at a time.')),
                ('tenant_id', models.CharField(help_text='Directory (tenant) id or domain, e.g. contoso.onmicrosoft.com.', max_length=120)),
                ('client_id', models.CharField(help_text='Application (client) id of the app registration.', max_length=120)),
                ('client_secret_encrypted', models.TextField(blank=True, default='', editable=False)),
                ('authority_host', models.URLField(default='https://login.microsoftonline.com', help_text="Microsoft Entra host; the emulator's in development.")),
                ('graph_base_url', models.URLField(default='https://graph.microsoft.com/v1.0', help_text='Microsoft Graph base URL including the version.')),
                ('delegated_user_email', models.EmailField(blank=True, default='', help_text='Service account that is a delegate on the room mailboxes (connect it with the admin action).', max_length=254)),
                ('organizer_account', models.EmailField(blank=True, default='', help_text="Organizes meetings for people without a mailbox and, in Strict mode, for rooms that don't.", max_length=254)),
                ('rooms_organize_own_meetings', models.BooleanField(default=False, help_text='Strict mode: rooms with a mailbox organize the meetings booked in them.')),
                ('strict_mode', models.BooleanField(default=False, help_text='Strict mode: rooms or the organizer account organize meetings.')),
                ('sync_window_past_days', models.PositiveIntegerField(default=60, help_text='Days back the full resync covers.')),
                ('sync_window_future_days', models.PositiveIntegerField(default=365, help_text='Days ahead the full resync covers.')),
                ('delegated_token_cache_encrypted', models.TextField(blank=True, default='', editable=False)),
                ('delegated_connected_as', models.EmailField(blank=True, default='', editable=False, max_length=254)),
                ('delegated_connected_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('delegated_last_error', models.TextField(blank=True, default='', editable=False)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['-active', 'name'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('active', True)), fields=('active',), name='calendarprovider_one_active')],
            },
        ),
        migrations.CreateModel(
            name='PersonalToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('account_email', models.EmailField(help_text='The Outlook account the user signed in with.', max_length=254)),
                ('token_cache_encrypted', models.TextField(editable=False)),
                ('connected_at', models.DateTimeField()),
                ('refreshed_at', models.DateTimeField(blank=True, null=True)),
                ('needs_reconnect', models.BooleanField(default=False)),
                ('last_error', models.TextField(blank=True, default='')),
                ('provider', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='personal_tokens', to='exchange_auth.calendarprovider')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outlook_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('user', 'provider'), name='personaltoken_one_per_user_provider')],
            },
        ),
    ]
