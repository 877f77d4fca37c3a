"""How a booth's multipart body is parsed into files (Django's ``FILE_UPLOAD_HANDLERS``)."""

from __future__ import annotations

from typing import Any

from django.core.files import uploadhandler
from django.core.files.uploadedfile import UploadedFile


class TemporaryFileUploadHandler(uploadhandler.TemporaryFileUploadHandler):
    """Django's handler for a photo over ``FILE_UPLOAD_MAX_MEMORY_SIZE``, except that a write that fails
    (a full disk) removes the partial temporary file at once.

    Django's parser lets the error through without closing the file: it would stay on the full disk
    until the garbage collector happened to find it, keeping the disk full for the next booth.
    """

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError:
            self._remove_partial_file()
            raise

    def file_complete(self, file_size: int) -> UploadedFile | None:
        try:
            return super().file_complete(file_size)
        except OSError:  # the last buffered bytes are written here
            self._remove_partial_file()
            raise

    def _remove_partial_file(self) -> None:
        file: Any = getattr(self, "file", None)
        if file is not None:
            file.close()  # a NamedTemporaryFile: closing it deletes it
