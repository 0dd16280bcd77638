function Get-PhotoReport {
    <#
    .SYNOPSIS
    Reports the AD photo of every user in scope next to the cloud photo (Exchange Online / Entra ID): size, dimensions, format and what is wrong.
    .DESCRIPTION
    One PhotoBulk.ReportRow per user, with flags (the Flags property holds the codes): NoPhoto (none anywhere), AdOnly,
    CloudOnly, Over10KB (Exchange Online will not take it from AD), Differs (AD and cloud show different pictures),
    NotSquare, Under96px, NotJpeg, HasGps (EXIF location data stored in the directory), ExifData, Unreadable, and
    ByPhotoBulk / ChangedSincePhotoBulk / NotByPhotoBulk from the import journal. The cloud columns are filled when
    Graph sign-in parameters (-TenantId with -ClientCredential, or -AccessToken) are given. Without -Identity every
    user under -SearchBase is reported (paged; no 1000-user limit). -AsCsv writes CSV text instead of objects.
    The same report is `photobulk report` on the command line.
    .PARAMETER HtmlPath
    Also write an HTML contact sheet there: counts and a chart of the flags on top, the AD and cloud photos side by side, filter by flag and search. Photos are inline for up to 1,000 named users, else in a folder beside the file.
    .PARAMETER PhotoPath
    A photo folder (file name = account, as Set-PhotoBulk reads it): show the photo a run would write and flag (WouldChange) the users it would change.
    .PARAMETER CloudMatch
    How an AD user is found in the tenant: Upn (default, what Entra Connect syncs), Mail, or Alias (sAMAccountName = UPN prefix).
    .PARAMETER TenantId
    Compare with the cloud: the tenant id or domain, with -ClientCredential.
    .PARAMETER ClientCredential
    Compare with the cloud: user name = the app's client id, password = its client secret (needs ProfilePhoto.Read.All and User.Read.All).
    .PARAMETER CertificatePath
    A PEM file with the app's certificate and RSA key, used instead of the client secret.
    .PARAMETER AccessToken
    Compare with the cloud using a Graph access token you already have.
    .PARAMETER GraphEnvironment
    Global (default), USGov, USGovDoD or China.
    .PARAMETER GraphUrl
    The Graph root including the version, for proxies and test emulators.
    .PARAMETER GraphAuthorityUrl
    The sign-in authority (the token endpoint's root), for proxies and test emulators.
    .PARAMETER Identity
    Users to report on (binds SamAccountName / UserPrincipalName from Get-ADUser or a CSV). All users when absent.
    .PARAMETER MatchBy
    Which AD attribute -Identity names: SamAccountName (default), UserPrincipalName, Mail or EmployeeId.
    .PARAMETER Server
    A domain controller (host name, or an ldaps:// / ldap:// URL). With none, one is found in DNS (SRV _ldap._tcp.dc._msdcs of -Domain).
    .PARAMETER Domain
    The AD DNS domain whose domain controllers are looked up when -Server is absent (default: USERDNSDOMAIN, the Kerberos ticket's realm).
    .PARAMETER DnsServer
    Ask this DNS server (IP or IP:PORT) for the domain controllers instead of the system's resolver.
    .PARAMETER Credential
    The account that reads the directory. Its password goes only through the sidecar's pipe. With none, the sidecar signs in as you (Kerberos: your Windows logon, or a kinit ticket on Linux/macOS), as Set-ADUser does.
    .PARAMETER CaFile
    A PEM file with the CA that issued the domain controller's certificate, when the system store does not have it.
    .PARAMETER SearchBase
    Report every user under this DN (the domain's naming context by default).
    .PARAMETER OnlyWithPhoto
    Leave out users that have no photo.
    .PARAMETER AsCsv
    Write CSV text (one line per user, flags joined by ';') instead of objects.
    .EXAMPLE
    Get-PhotoReport | Where-Object Over10KB
    .EXAMPLE
    Get-ADUser -Filter * -SearchBase 'OU=Sales,DC=corp,DC=example' | Get-PhotoReport -Server dc1 -Credential $cred -AsCsv | Set-Content sales-photos.csv
    .EXAMPLE
    Get-PhotoReport -Server dc1 -Credential $cred -SearchBase 'OU=Staff,DC=corp,DC=example' -HtmlPath .\staff-photos.html | Out-Null
    .EXAMPLE
    Get-PhotoReport -Server dc1 -Credential $cred -OnlyWithPhoto | Sort-Object Bytes -Descending | Select-Object -First 20
    .EXAMPLE
    Get-PhotoReport -TenantId contoso.onmicrosoft.com -ClientCredential $app -HtmlPath .\photos.html | Where-Object { $_.AdOnly -or $_.Differs }
    #>
    [CmdletBinding()]
    [OutputType('PhotoBulk.ReportRow')]
    param(
        [Parameter(Position = 0, ValueFromPipeline = $true, ValueFromPipelineByPropertyName = $true)]
        [Alias('SamAccountName', 'UserPrincipalName')]
        [string[]]$Identity,
        [ValidateSet('SamAccountName', 'UserPrincipalName', 'Mail', 'EmployeeId')][string]$MatchBy = 'SamAccountName',
        [string]$Server, [string]$Domain, [string]$DnsServer, [string]$SearchBase,
        [System.Management.Automation.PSCredential][System.Management.Automation.Credential()]$Credential = [System.Management.Automation.PSCredential]::Empty,
        [string]$CaFile,
        [switch]$OnlyWithPhoto, [string]$HtmlPath, [switch]$AsCsv, [string]$PhotoPath,
        [ValidateSet('Upn', 'Mail', 'Alias')][string]$CloudMatch = 'Upn',
        [string]$TenantId, [pscredential]$ClientCredential, [string]$CertificatePath, [securestring]$AccessToken,
        [ValidateSet('Global', 'USGov', 'USGovDoD', 'China')][string]$GraphEnvironment = 'Global',
        [string]$GraphUrl, [string]$GraphAuthorityUrl
    )
    begin { $identities = New-Object System.Collections.Generic.List[string] }
    process { foreach ($i in $Identity) { if ($i) { $identities.Add($i) } } }
    end {
        Connect-PhotoBulkDirectory -Cmdlet $PSCmdlet -Server $Server -Domain $Domain -DnsServer $DnsServer -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile
        $cloud = [bool]($AccessToken -or ($TenantId -and $ClientCredential))
        if ($cloud) {
            Connect-PhotoBulkGraph -Cmdlet $PSCmdlet -TenantId $TenantId -ClientCredential $ClientCredential -CertificatePath $CertificatePath -AccessToken $AccessToken -Environment $GraphEnvironment -GraphUrl $GraphUrl -AuthorityUrl $GraphAuthorityUrl
        }
        $cmdlet = $PSCmdlet
        $params = [ordered]@{ identities = $identities.ToArray(); matchBy = $MatchBy.ToLowerInvariant(); onlyWithPhoto = [bool]$OnlyWithPhoto; cloud = $cloud; cloudMatch = $CloudMatch.ToLowerInvariant() }
        if ($PhotoPath) { $params.photosPath = (Resolve-Path -LiteralPath $PhotoPath).ProviderPath }
        if ($SearchBase) { $params.searchBase = $SearchBase }
        if ($HtmlPath) { $params.htmlPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($HtmlPath) }
        $onNotification = {
            param($method, $note)
            if ($method -ne 'report/row') { return }
            $row = $note.row
            $flags = @($row.flags)
            $get = { param($name) if ($row.PSObject.Properties[$name]) { $row.$name } }
            $out = [PSCustomObject]@{
                PSTypeName = 'PhotoBulk.ReportRow'; Identity = $row.identity; HasPhoto = [bool]$row.hasPhoto
                Bytes = & $get 'bytes'; Width = & $get 'width'; Height = & $get 'height'; Format = & $get 'format'; Flags = $flags
                CloudState = & $get 'cloudState'; CloudUser = & $get 'cloudUser'; HasCloudPhoto = ((& $get 'cloudState') -eq 'photo')
                CloudBytes = & $get 'cloudBytes'; CloudWidth = & $get 'cloudWidth'; CloudHeight = & $get 'cloudHeight'
                NoPhoto = $flags -contains 'no_photo'; AdOnly = $flags -contains 'ad_only'; CloudOnly = $flags -contains 'cloud_only'
                Over10KB = $flags -contains 'over_10kb'; Differs = $flags -contains 'differs'; NotSquare = $flags -contains 'not_square'
                Under96px = $flags -contains 'under_96px'; NotJpeg = $flags -contains 'not_jpeg'
                HasGps = $flags -contains 'gps_exif'; ExifData = $flags -contains 'exif_data'; Unreadable = $flags -contains 'unreadable'
                ByPhotoBulk = $flags -contains 'by_photobulk'; ChangedSincePhotoBulk = $flags -contains 'changed_since_photobulk'
                WouldChange = $flags -contains 'would_change'; File = & $get 'file'
                WrittenByRun = & $get 'writtenByRun'; WrittenAt = & $get 'writtenAt'
                DistinguishedName = & $get 'dn'; UserPrincipalName = & $get 'userPrincipalName'; Mail = & $get 'mail'; DisplayName = & $get 'displayName'
                Error = $(if ($row.PSObject.Properties['error'] -and $row.error) { $row.error.message } else { $null })
            }
            if ($row.PSObject.Properties['error'] -and $row.error) { Write-PhotoBulkItemError -Cmdlet $cmdlet -ItemError $row.error -Target $out }
            $out
        }
        $rows = Invoke-PhotoBulkRpc -Method 'report.run' -Params $params -OnNotification $onNotification |
            Where-Object { $_.PSObject.TypeNames -contains 'PhotoBulk.ReportRow' }
        if ($AsCsv) {
            $columns = @('Identity', 'HasPhoto', 'Bytes', 'Width', 'Height', 'Format', 'CloudState', 'CloudUser', 'CloudBytes', @{ n = 'Flags'; e = { $_.Flags -join ';' } }, 'WrittenByRun', 'DistinguishedName', 'Error')
            $rows | Select-Object -Property $columns | ConvertTo-Csv -NoTypeInformation
        }
        else { $rows }
    }
}
