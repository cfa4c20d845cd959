from django.apps import AppConfig


class WorkplaceConfig(AppConfig):
    name = "workplace"
    verbose_name = "Space directory"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from workplace import catalogue
        from workplace.models import Arrangement, Building, Equipment, Floor, Room

        # The portal's cached lists of buildings, floors, equipment and layouts (workplace/catalogue.py).
        for model in (Building, Floor, Room, Equipment, Arrangement):
            for signal in (post_save, post_delete):
                signal.connect(catalogue.invalidate_on_edit, sender=model, dispatch_uid=f"workplace.catalogue.{signal is post_save}.{model.__name__}")
        m2m_changed.connect(catalogue.invalidate_on_edit, sender=Room.equipment.through, dispatch_uid="workplace.catalogue.room_equipment")
