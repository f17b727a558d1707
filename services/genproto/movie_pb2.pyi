# mypy: ignore-errors
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_TYPE_UNSPECIFIED: _ClassVar[RecordType]
    RECORD_TYPE_MOVIE: _ClassVar[RecordType]
RECORD_TYPE_UNSPECIFIED: RecordType
RECORD_TYPE_MOVIE: RecordType

class Metadata(_message.Message):
    __slots__ = ("id", "title", "description", "director")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DIRECTOR_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    description: str
    director: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., director: _Optional[str] = ...) -> None: ...

class GetMetadataRequest(_message.Message):
    __slots__ = ("movie_id",)
    MOVIE_ID_FIELD_NUMBER: _ClassVar[int]
    movie_id: str
    def __init__(self, movie_id: _Optional[str] = ...) -> None: ...

class GetMetadataResponse(_message.Message):
    __slots__ = ("metadata",)
    METADATA_FIELD_NUMBER: _ClassVar[int]
    metadata: Metadata
    def __init__(self, metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class PutMetadataRequest(_message.Message):
    __slots__ = ("metadata",)
    METADATA_FIELD_NUMBER: _ClassVar[int]
    metadata: Metadata
    def __init__(self, metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class PutMetadataResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAggregatedRatingRequest(_message.Message):
    __slots__ = ("record_id", "record_type")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    record_type: RecordType
    def __init__(self, record_id: _Optional[str] = ..., record_type: _Optional[_Union[RecordType, str]] = ...) -> None: ...

class GetAggregatedRatingResponse(_message.Message):
    __slots__ = ("rating_value", "rating_count")
    RATING_VALUE_FIELD_NUMBER: _ClassVar[int]
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    rating_value: float
    rating_count: int
    def __init__(self, rating_value: _Optional[float] = ..., rating_count: _Optional[int] = ...) -> None: ...

class PutRatingRequest(_message.Message):
    __slots__ = ("user_id", "record_id", "record_type", "rating_value")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    RATING_VALUE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    record_id: str
    record_type: RecordType
    rating_value: int
    def __init__(self, user_id: _Optional[str] = ..., record_id: _Optional[str] = ..., record_type: _Optional[_Union[RecordType, str]] = ..., rating_value: _Optional[int] = ...) -> None: ...

class PutRatingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MovieDetails(_message.Message):
    __slots__ = ("rating", "metadata", "rating_count", "rating_available")
    RATING_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATING_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    rating: float
    metadata: Metadata
    rating_count: int
    rating_available: bool
    def __init__(self, rating: _Optional[float] = ..., metadata: _Optional[_Union[Metadata, _Mapping]] = ..., rating_count: _Optional[int] = ..., rating_available: _Optional[bool] = ...) -> None: ...

class GetMovieDetailsRequest(_message.Message):
    __slots__ = ("movie_id",)
    MOVIE_ID_FIELD_NUMBER: _ClassVar[int]
    movie_id: str
    def __init__(self, movie_id: _Optional[str] = ...) -> None: ...

class GetMovieDetailsResponse(_message.Message):
    __slots__ = ("movie_details",)
    MOVIE_DETAILS_FIELD_NUMBER: _ClassVar[int]
    movie_details: MovieDetails
    def __init__(self, movie_details: _Optional[_Union[MovieDetails, _Mapping]] = ...) -> None: ...

class RateMovieRequest(_message.Message):
    __slots__ = ("movie_id", "rating_value")
    MOVIE_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_VALUE_FIELD_NUMBER: _ClassVar[int]
    movie_id: str
    rating_value: int
    def __init__(self, movie_id: _Optional[str] = ..., rating_value: _Optional[int] = ...) -> None: ...

class RateMovieResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("filename", "chunk")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    filename: str
    chunk: bytes
    def __init__(self, filename: _Optional[str] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("message", "size_bytes")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    message: str
    size_bytes: int
    def __init__(self, message: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...
