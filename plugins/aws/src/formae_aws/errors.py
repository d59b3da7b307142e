"""AWS's errors, in formae's vocabulary: the agent retries by ``ErrorCode``, so the mapping decides
what is tried again.

Lookup order: the exact AWS error code in ``AWS_CODES``; a code ending in ``.NotFound`` (EC2's
``InvalidVpcID.NotFound`` and kin); the HTTP status in ``HTTP_STATUSES``; else
``GENERAL_SERVICE_EXCEPTION``. Errors raised before a request reaches AWS (no credentials, no
connection) have their own table, ``LOCAL_ERRORS``. Throttling carries the service's
``Retry-After`` when it sends one, else ``THROTTLING_BACKOFF``.

The message is AWS's own (it names what was wrong, never a credential); request parameters are
not echoed, since a parameter may be a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore import exceptions as botocore_errors

from formae.plugin import ErrorCode

THROTTLING_BACKOFF = 1.0
"""Seconds to wait after a throttling error that does not say how long."""

AWS_CODES: dict[str, ErrorCode] = {
    # the resource is not there
    "NoSuchBucket": ErrorCode.NOT_FOUND,
    "NoSuchEntity": ErrorCode.NOT_FOUND,
    "NotFound": ErrorCode.NOT_FOUND,
    "NotFoundException": ErrorCode.NOT_FOUND,
    "ResourceNotFoundException": ErrorCode.NOT_FOUND,
    "AWS.SimpleQueueService.NonExistentQueue": ErrorCode.NOT_FOUND,
    "QueueDoesNotExist": ErrorCode.NOT_FOUND,
    # it is there already
    "BucketAlreadyExists": ErrorCode.ALREADY_EXISTS,
    "BucketAlreadyOwnedByYou": ErrorCode.ALREADY_EXISTS,
    "EntityAlreadyExists": ErrorCode.ALREADY_EXISTS,
    "ResourceAlreadyExistsException": ErrorCode.ALREADY_EXISTS,
    "ResourceExistsException": ErrorCode.ALREADY_EXISTS,
    "QueueAlreadyExists": ErrorCode.ALREADY_EXISTS,
    "QueueNameExists": ErrorCode.ALREADY_EXISTS,
    "InvalidGroup.Duplicate": ErrorCode.ALREADY_EXISTS,
    "TableAlreadyExistsException": ErrorCode.ALREADY_EXISTS,
    # slow down
    "Throttling": ErrorCode.THROTTLING,
    "ThrottlingException": ErrorCode.THROTTLING,
    "ThrottledException": ErrorCode.THROTTLING,
    "RequestLimitExceeded": ErrorCode.THROTTLING,
    "RequestThrottled": ErrorCode.THROTTLING,
    "RequestThrottledException": ErrorCode.THROTTLING,
    "TooManyRequestsException": ErrorCode.THROTTLING,
    "SlowDown": ErrorCode.THROTTLING,
    "ProvisionedThroughputExceededException": ErrorCode.THROTTLING,
    "PriorRequestNotComplete": ErrorCode.THROTTLING,
    # the request is wrong
    "ValidationError": ErrorCode.INVALID_REQUEST,
    "ValidationException": ErrorCode.INVALID_REQUEST,
    "InvalidParameter": ErrorCode.INVALID_REQUEST,
    "InvalidParameterValue": ErrorCode.INVALID_REQUEST,
    "InvalidParameterValueException": ErrorCode.INVALID_REQUEST,
    "InvalidParameterException": ErrorCode.INVALID_REQUEST,
    "InvalidParameterCombination": ErrorCode.INVALID_REQUEST,
    "InvalidAttributeName": ErrorCode.INVALID_REQUEST,
    "InvalidAttributeValue": ErrorCode.INVALID_REQUEST,
    "InvalidRequestException": ErrorCode.INVALID_REQUEST,
    "InvalidRequest": ErrorCode.INVALID_REQUEST,
    "InvalidArgument": ErrorCode.INVALID_REQUEST,
    "InvalidInput": ErrorCode.INVALID_REQUEST,
    "InvalidBucketName": ErrorCode.INVALID_REQUEST,
    "InvalidSubnet.Range": ErrorCode.INVALID_REQUEST,
    "InvalidSubnet.Conflict": ErrorCode.INVALID_REQUEST,
    "InvalidVpc.Range": ErrorCode.INVALID_REQUEST,
    "MalformedPolicyDocument": ErrorCode.INVALID_REQUEST,
    "MalformedXML": ErrorCode.INVALID_REQUEST,
    "MissingParameter": ErrorCode.INVALID_REQUEST,
    "UnsupportedOperation": ErrorCode.INVALID_REQUEST,
    # not allowed
    "AccessDenied": ErrorCode.ACCESS_DENIED,
    "AccessDeniedException": ErrorCode.ACCESS_DENIED,
    "AuthorizationError": ErrorCode.ACCESS_DENIED,
    "UnauthorizedOperation": ErrorCode.ACCESS_DENIED,
    # not who it says
    "AuthFailure": ErrorCode.INVALID_CREDENTIALS,
    "ExpiredToken": ErrorCode.INVALID_CREDENTIALS,
    "ExpiredTokenException": ErrorCode.INVALID_CREDENTIALS,
    "InvalidAccessKeyId": ErrorCode.INVALID_CREDENTIALS,
    "InvalidClientTokenId": ErrorCode.INVALID_CREDENTIALS,
    "SignatureDoesNotMatch": ErrorCode.INVALID_CREDENTIALS,
    "UnrecognizedClientException": ErrorCode.INVALID_CREDENTIALS,
    # an account limit
    "LimitExceeded": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    "LimitExceededException": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    "TooManyBuckets": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    "VpcLimitExceeded": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    "SubnetLimitExceeded": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    "RulesPerSecurityGroupLimitExceeded": ErrorCode.SERVICE_LIMIT_EXCEEDED,
    # something else is using it, or changing it right now
    "BucketNotEmpty": ErrorCode.RESOURCE_CONFLICT,
    "ConflictException": ErrorCode.RESOURCE_CONFLICT,
    "DeleteConflict": ErrorCode.RESOURCE_CONFLICT,
    "DependencyViolation": ErrorCode.RESOURCE_CONFLICT,
    "OperationAborted": ErrorCode.RESOURCE_CONFLICT,
    "ResourceConflictException": ErrorCode.RESOURCE_CONFLICT,
    "ResourceInUseException": ErrorCode.RESOURCE_CONFLICT,
    "ConcurrentModification": ErrorCode.RESOURCE_CONFLICT,
    "ConcurrentModificationException": ErrorCode.RESOURCE_CONFLICT,
    "InvalidPermission.Duplicate": ErrorCode.RESOURCE_CONFLICT,
    # AWS's side failed
    "InternalError": ErrorCode.SERVICE_INTERNAL_ERROR,
    "InternalFailure": ErrorCode.SERVICE_INTERNAL_ERROR,
    "InternalServerError": ErrorCode.SERVICE_INTERNAL_ERROR,
    "InternalServiceError": ErrorCode.SERVICE_INTERNAL_ERROR,
    "ServiceException": ErrorCode.SERVICE_INTERNAL_ERROR,
    "ServiceUnavailable": ErrorCode.SERVICE_INTERNAL_ERROR,
    "ServiceUnavailableException": ErrorCode.SERVICE_INTERNAL_ERROR,
}

HTTP_STATUSES: dict[int, ErrorCode] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.INVALID_CREDENTIALS,
    403: ErrorCode.ACCESS_DENIED,
    404: ErrorCode.NOT_FOUND,
    409: ErrorCode.RESOURCE_CONFLICT,
    429: ErrorCode.THROTTLING,
    500: ErrorCode.SERVICE_INTERNAL_ERROR,
    502: ErrorCode.SERVICE_INTERNAL_ERROR,
    503: ErrorCode.SERVICE_INTERNAL_ERROR,
    504: ErrorCode.SERVICE_INTERNAL_ERROR,
}

LOCAL_ERRORS: tuple[tuple[type[Exception], ErrorCode], ...] = (
    (botocore_errors.NoCredentialsError, ErrorCode.INVALID_CREDENTIALS),
    (botocore_errors.PartialCredentialsError, ErrorCode.INVALID_CREDENTIALS),
    (botocore_errors.ProfileNotFound, ErrorCode.INVALID_CREDENTIALS),
    (botocore_errors.NoRegionError, ErrorCode.INVALID_REQUEST),
    (botocore_errors.ParamValidationError, ErrorCode.INVALID_REQUEST),
    (botocore_errors.ConnectionError, ErrorCode.NETWORK_FAILURE),  # connect, read, proxy, closed
    (botocore_errors.HTTPClientError, ErrorCode.NETWORK_FAILURE),
)


@dataclass(frozen=True, slots=True)
class Mapped:
    """An AWS failure as the agent sees it."""

    code: ErrorCode
    message: str
    retry_after: float = 0.0
    aws_code: str = ""


def aws_code(error: botocore_errors.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: Exception) -> bool:
    return isinstance(error, botocore_errors.ClientError) and map_error(error).code is ErrorCode.NOT_FOUND


def map_error(error: Exception) -> Mapped:
    """formae's code for ``error``, or PLUGIN_ERROR for an exception that is not AWS's."""
    if isinstance(error, botocore_errors.ClientError):
        return _map_client_error(error)
    for kind, code in LOCAL_ERRORS:
        if isinstance(error, kind):
            return Mapped(code, _first_line(str(error)))
    return Mapped(ErrorCode.PLUGIN_ERROR, f"{type(error).__name__}: {_first_line(str(error))}")


def _map_client_error(error: botocore_errors.ClientError) -> Mapped:
    code = aws_code(error)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    mapped = AWS_CODES.get(code)
    if mapped is None and code.endswith(".NotFound"):
        mapped = ErrorCode.NOT_FOUND
    if mapped is None:
        mapped = HTTP_STATUSES.get(status, ErrorCode.GENERAL_SERVICE_EXCEPTION)
    message = f"{code}: {error.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    retry_after = _retry_after(error) if mapped is ErrorCode.THROTTLING else 0.0
    return Mapped(mapped, message, retry_after, code)


def _retry_after(error: botocore_errors.ClientError) -> float:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return THROTTLING_BACKOFF


def _first_line(text: str) -> str:
    """The message on one line (botocore's validation errors list one problem a line)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
