"""Delete the API tokens of DRF's rest_framework.authtoken, which kept every token in plain text.

Flotilla's API tokens are django-rest-knox's now (stored as digests). The old tokens cannot be
carried over: each was shown in full on every visit of the token page, so each is revoked, and its
owner creates a new one on that page (which says so). The old app is no longer installed, so this
drops its table (`authtoken_token`) and forgets its applied migrations, as `migrate authtoken zero`
would have done. On a database that never had the table it does nothing. It cannot be undone.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.recorder import MigrationRecorder

OLD_TABLE = "authtoken_token"


def drop_plaintext_tokens(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    connection = schema_editor.connection
    if OLD_TABLE in connection.introspection.table_names():
        schema_editor.execute(f"DROP TABLE {schema_editor.quote_name(OLD_TABLE)}")
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [("knox", "0009_extend_authtoken_field")]

    operations = [migrations.RunPython(drop_plaintext_tokens, migrations.RunPython.noop, elidable=True)]
