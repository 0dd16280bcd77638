function Connect-PhotoBulkDirectory {
    # directory.connect from the cmdlets' connection parameters; the password goes only into the pipe.
    # No -Credential: the sidecar signs in as the current user (Kerberos: the Windows logon, or a kinit ticket).
    # No -Server: it finds a DC of -Domain (else the user's domain) in DNS.
    param($Cmdlet, [string]$Server, [string]$Domain, [string]$DnsServer, [string]$SearchBase, [pscredential]$Credential, [string]$CaFile, [string]$BackupPath)
    $connect = [ordered]@{}
    if ($Server) { $connect.server = $Server }
    if ($Domain) { $connect.domain = $Domain }
    if ($DnsServer) { $connect.dnsServer = $DnsServer }
    if ($SearchBase) { $connect.base = $SearchBase }
    if ($Credential -and $Credential -ne [pscredential]::Empty) { $connect.bind = $Credential.UserName; $connect.password = $Credential.GetNetworkCredential().Password }
    if ($CaFile) { $connect.caFile = (Resolve-Path -LiteralPath $CaFile).ProviderPath }
    if ($BackupPath) { $connect.backupDir = $Cmdlet.GetUnresolvedProviderPathFromPSPath($BackupPath) }
    $connected = Invoke-PhotoBulkRpc -Method 'directory.connect' -Params $connect
    if ($connected) { Write-Verbose ('Connected to {0} as {1} ({2})' -f $connected.server, $connected.boundAs, $connected.auth) }
}

function Connect-PhotoBulkGraph {
    # graph.connect; the client secret or the token goes only into the pipe.
    param($Cmdlet, [string]$TenantId, [pscredential]$ClientCredential, [string]$CertificatePath, [securestring]$AccessToken, [string]$Environment, [string]$GraphUrl, [string]$AuthorityUrl, [string]$BackupPath)
    $connect = [ordered]@{ cloud = $Environment.ToLowerInvariant() }
    if ($AccessToken) { $connect.accessToken = (New-Object System.Net.NetworkCredential('', $AccessToken)).Password }
    elseif ($TenantId -and $ClientCredential) {
        $connect.tenant = $TenantId; $connect.clientId = $ClientCredential.UserName
        if ($CertificatePath) { $connect.certificateFile = (Resolve-Path -LiteralPath $CertificatePath).ProviderPath }
        else { $connect.clientSecret = $ClientCredential.GetNetworkCredential().Password }
    }
    else { throw 'Target ExchangeOnline needs -AccessToken, or -TenantId with -ClientCredential (client id and secret, or with -CertificatePath)' }
    if ($GraphUrl) { $connect.graphUrl = $GraphUrl }
    if ($AuthorityUrl) { $connect.authorityUrl = $AuthorityUrl }
    if ($BackupPath) { $connect.backupDir = Join-Path $Cmdlet.GetUnresolvedProviderPathFromPSPath($BackupPath) 'graph' }
    $null = Invoke-PhotoBulkRpc -Method 'graph.connect' -Params $connect
}

function New-PhotoBulkResult {
    # One PhotoBulk.Result from a bulk/item (or a photo.* answer shaped like one); Status in PascalCase (ready -> Ready).
    param($Item, [string]$Status)
    if (-not $Status) { $Status = [System.Globalization.CultureInfo]::InvariantCulture.TextInfo.ToTitleCase(([string]$Item.status).Replace('_', ' ')).Replace(' ', '') }
    $get = { param($name) if ($Item.PSObject.Properties[$name]) { $Item.$name } }
    $err = & $get 'error'
    $sha = & $get 'adSha256'
    if (-not $sha) { $sha = & $get 'hdSha256' }
    [PSCustomObject]@{
        PSTypeName = 'PhotoBulk.Result'; Identity = & $get 'identity'; Target = & $get 'target'; Status = $Status
        Path = & $get 'path'; DistinguishedName = & $get 'dn'; UserPrincipalName = & $get 'userPrincipalName'; Bytes = & $get 'adBytes'
        Sha256 = $sha; BackupId = & $get 'backupId'; HdPath = & $get 'hdPath'
        Warnings = @(& $get 'warnings' | ForEach-Object { if ($_.PSObject.Properties['message']) { $_.message } else { [string]$_ } })
        Crop = & $get 'crop'; Face = & $get 'face'; Error = $(if ($err) { $err.message } else { $null })
    }
}

function Write-PhotoBulkItemError {
    # One non-terminating error per failed item, through the calling cmdlet (its -ErrorAction and -ErrorVariable apply),
    # with a category, ErrorId PhotoBulk.<kind> and the result as TargetObject.
    param($Cmdlet, $ItemError, $Target)
    $categories = @{
        user_not_found = 'ObjectNotFound'; ambiguous_user = 'InvalidResult'; access_denied = 'PermissionDenied'
        invalid_credentials = 'AuthenticationError'; image_invalid = 'InvalidData'; duplicate = 'InvalidArgument'
        no_account = 'InvalidArgument'; unavailable = 'ResourceUnavailable'; photo_too_large = 'LimitsExceeded'
        no_mailbox = 'ObjectNotFound'; graph_auth = 'AuthenticationError'; photo_rejected = 'InvalidData'; io = 'ReadError'
        exchange = 'WriteError'; backup_not_found = 'ObjectNotFound'; message_too_large = 'LimitsExceeded'
    }
    $category = 'WriteError'
    if ($categories.ContainsKey([string]$ItemError.kind)) { $category = $categories[[string]$ItemError.kind] }
    $exception = New-Object System.InvalidOperationException([string]$ItemError.message)
    $Cmdlet.WriteError((New-Object System.Management.Automation.ErrorRecord($exception, "PhotoBulk.$($ItemError.kind)", $category, $Target)))
}

function Invoke-PhotoBulkPhotoWrite {
    # One photo.remove / photo.restore: a PhotoBulk.Result (Target ActiveDirectory), with a non-terminating error when it failed.
    param($Cmdlet, [string]$Method, [string]$Status, [System.Collections.IDictionary]$Params)
    $r = Invoke-PhotoBulkRpc -Method $Method -Params $Params -NoThrow
    if ($r.PSObject.Properties['error']) {
        $result = New-PhotoBulkResult -Status 'Failed' -Item ([pscustomobject]@{ identity = $Params.identity; target = 'ActiveDirectory'; error = $r.error })
        Write-PhotoBulkItemError -Cmdlet $Cmdlet -ItemError $r.error -Target $result
        return $result
    }
    $result = New-PhotoBulkResult -Status $Status -Item ([pscustomobject]@{ identity = $Params.identity; target = 'ActiveDirectory'; dn = $r.dn; adBytes = $r.bytes; backupId = $r.backupId })
    $result | Add-Member -NotePropertyName RestoredId -NotePropertyValue $(if ($r.PSObject.Properties['restoredId']) { $r.restoredId }) -PassThru
}
