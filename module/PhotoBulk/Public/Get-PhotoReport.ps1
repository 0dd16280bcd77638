function Get-PhotoReport {
    <#
    .SYNOPSIS
    Reports the AD photo of every user in scope: size, dimensions, format and what is wrong with it.
    .DESCRIPTION
    One PhotoBulk.ReportRow per user, with flags: Over10KB (Exchange Online will not take it from AD), NotSquare,
    Under96px, NotJpeg, HasGps (EXIF location data stored in the directory), Unreadable. Without -Identity every
    user under -SearchBase is reported (paged; no 1000-user limit). -AsCsv writes CSV text instead of objects.
    .PARAMETER HtmlPath
    Also write a self-contained HTML contact sheet there: every user's photo inline, flags highlighted, counts on top.
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
        [switch]$OnlyWithPhoto, [string]$HtmlPath, [switch]$AsCsv
    )
    begin { $identities = New-Object System.Collections.Generic.List[string] }
    process { foreach ($i in $Identity) { if ($i) { $identities.Add($i) } } }
    end {
        Connect-PhotoBulkDirectory -Cmdlet $PSCmdlet -Server $Server -Domain $Domain -DnsServer $DnsServer -SearchBase $SearchBase -Credential $Credential -CaFile $CaFile
        $cmdlet = $PSCmdlet
        $params = [ordered]@{ identities = $identities.ToArray(); matchBy = $MatchBy.ToLowerInvariant(); onlyWithPhoto = [bool]$OnlyWithPhoto }
        if ($SearchBase) { $params.searchBase = $SearchBase }
        if ($HtmlPath) { $params.htmlPath = $PSCmdlet.GetUnresolvedProviderPathFromPSPath($HtmlPath) }
        $onNotification = {
            param($method, $note)
            if ($method -ne 'report/row') { return }
            $row = $note.row
            $flags = @($row.flags)
            $out = [PSCustomObject]@{
                PSTypeName = 'PhotoBulk.ReportRow'; Identity = $row.identity; HasPhoto = [bool]$row.hasPhoto
                Bytes = $row.bytes; Width = $row.width; Height = $row.height; Format = $row.format; Flags = $flags
                Over10KB = $flags -contains 'over_10kb'; NotSquare = $flags -contains 'not_square'
                Under96px = $flags -contains 'under_96px'; NotJpeg = $flags -contains 'not_jpeg'
                HasGps = $flags -contains 'gps_exif'; Unreadable = $flags -contains 'unreadable'
                DistinguishedName = $row.dn; UserPrincipalName = $row.userPrincipalName
                Error = $(if ($row.PSObject.Properties['error'] -and $row.error) { $row.error.message } else { $null })
            }
            if ($row.PSObject.Properties['error'] -and $row.error) { Write-PhotoBulkItemError -Cmdlet $cmdlet -ItemError $row.error -Target $out }
            $out
        }
        $rows = Invoke-PhotoBulkRpc -Method 'report.run' -Params $params -OnNotification $onNotification |
            Where-Object { $_.PSObject.TypeNames -contains 'PhotoBulk.ReportRow' }
        if ($AsCsv) {
            $columns = @('Identity', 'HasPhoto', 'Bytes', 'Width', 'Height', 'Format', @{ n = 'Flags'; e = { $_.Flags -join ';' } }, 'DistinguishedName', 'Error')
            $rows | Select-Object -Property $columns | ConvertTo-Csv -NoTypeInformation
        }
        else { $rows }
    }
}
